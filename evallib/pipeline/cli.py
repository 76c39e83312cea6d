"""Command line: ``evallib run``, ``evallib validate``, ``evallib make-params``, ``evallib schema``, ``evallib design``,
``evallib publish``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from evallib.errors import EvalLibError
from evallib.vocabulary import plural

log = logging.getLogger("evallib")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evallib", description="Evaluate NHS new care model sites and publish the reports."
    )
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="validate params, execute the site notebook for each site, publish outputs/site/")
    run.add_argument("sites", nargs="*", help="site ids (default: every params file)")
    run.add_argument("--jobs", "-j", type=int, default=None, help="notebooks at a time (default: number of cores)")
    run.add_argument("--params-dir", type=Path, default=Path("params"))
    run.add_argument("--outputs", type=Path, default=Path("outputs"))
    run.add_argument("--no-progress", action="store_true", help="no progress bar (for logs)")
    run.add_argument("--force", action="store_true", help="rerun sites even when nothing they depend on changed")
    run.add_argument("--wait", action="store_true", help="if another run or publish holds outputs/, wait for it")
    run.add_argument(
        "--executor",
        choices=("auto", "kernel", "forked"),
        default="auto",
        help="forked (auto, the default): notebooks run in processes forked after the imports (POSIX; on Dask, "
        "warm workers run each site from files the run sends them); kernel: one Jupyter kernel per notebook (on "
        "Dask the workers must see the project at the same path)",
    )
    run.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run the sites as tasks on a Dask cluster at ADDRESS (e.g. tcp://10.0.0.5:8786); needs evallib[dask]",
    )
    _timeout_option(run)
    val = sub.add_parser("validate", help="check params files and their data without running anything")
    val.add_argument("sites", nargs="*")
    val.add_argument("--params-dir", type=Path, default=Path("params"))
    mk = sub.add_parser("make-params", help="write params/<type>/<site>.yaml from the site registry")
    mk.add_argument("--params-dir", type=Path, default=Path("params"))
    mk.add_argument("--overwrite", action="store_true", help="replace existing (possibly hand-edited) files")
    mk.add_argument(
        "--update", action="store_true", help="regenerate the files nobody edited since generation; keep hand edits"
    )
    sch = sub.add_parser(
        "schema", help="write params/params.schema.json, the JSON Schema editors use to check params files as typed"
    )
    sch.add_argument("--params-dir", type=Path, default=Path("params"))
    sch.add_argument("--check", action="store_true", help="exit 1 if the file is missing or out of date")
    cal = sub.add_parser(
        "calibrate",
        help="the calibration study: every comparison area as a fake site, every estimator; writes "
        "params/calibration.csv (then `evallib make-params --update` sets each protocol's primary estimator)",
    )
    cal.add_argument("--params-dir", type=Path, default=Path("params"))
    cal.add_argument("--outputs", type=Path, default=Path("outputs"))
    cal.add_argument("--jobs", "-j", type=int, default=None, help="designs at a time (default: number of cores)")
    cal.add_argument("--max-fake-sites", type=int, default=None, help="a seeded random subset of each pool")
    cal.add_argument("--no-progress", action="store_true")
    des = sub.add_parser(
        "design",
        help="before the start: detectable effects, power curves and follow-up needed by estimator, pool and "
        "follow-up, from data before the start only; writes scratch/<site>/design.html and design.csv",
    )
    des.add_argument("site", nargs="?", default=None, help="site id (e.g. V01); or --all --write-choices")
    des.add_argument("--params-dir", type=Path, default=Path("params"))
    des.add_argument("--hoped-for", type=float, default=5.0, metavar="PERCENT", help="effect hoped for (default 5)")
    des.add_argument(
        "--share", type=float, default=1.0, help="the targeted group's share of the area's outcome (default 1: all)"
    )
    des.add_argument("--out", type=Path, default=None, help="folder for the page (default scratch/<site>/)")
    des.add_argument(
        "--write",
        action="store_true",
        help="write the chosen comparison pool into the site's params file (design_pool)",
    )
    des.add_argument("--force", action="store_true", help="with --write: write even though the site has results")
    des.add_argument(
        "--all",
        action="store_true",
        help="with --write-choices: every evaluable site (then `evallib make-params --update` applies the choices)",
    )
    des.add_argument(
        "--write-choices",
        action="store_true",
        help="with --all: write each site's chosen pool to params/design_pools.csv",
    )
    des.add_argument("--jobs", "-j", type=int, default=None, help="with --all: sites at a time (default: cores)")
    pub = sub.add_parser(
        "publish", help="rebuild the programme page and outputs/site/ from the verified results in outputs/"
    )
    pub.add_argument("--outputs", type=Path, default=Path("outputs"))
    pub.add_argument("--params-dir", type=Path, default=Path("params"))
    pub.add_argument("--wait", action="store_true", help="if another run or publish holds outputs/, wait for it")
    _timeout_option(pub)
    return p


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return value


def _timeout_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--site-timeout",
        type=_seconds,
        default=20 * 60.0,
        metavar="SECONDS",
        help="stop a site's (or the programme's) notebook after this many seconds and record it as failed "
        "(default 1200: 20 minutes)",
    )


def _warn(problems: tuple[str, ...] | list[str]) -> None:
    for line in problems:
        print(f"warning: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the ``evallib`` command with ``argv`` (default: the command line); returns the exit status."""
    # One BLAS thread per process (set before numpy loads): the batch runs a process per core, and competing
    # BLAS threads make the placebo inference's many small matrix products far slower.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    # jsonschema (under nbformat and papermill) imports rfc3987_syntax when installed, only for its "iri" format
    # checks, and that module compiles 38 grammars on import: 1.2 s at every start, paid before a batch's workers
    # fork. No notebook, params or results check uses those formats. This command's process only, not a kernel's.
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    args = _parser().parse_args(argv)
    code = _command(args)
    if argv is None and args.command == "run":
        # The command itself (not a caller of main()): leave without tearing down the interpreter. A batch's
        # process holds every data window and library (about 0.3 s of CPU to free, on one core, after the
        # work is done); nothing is left to finish: the workers and helper are reaped, the lock released, and
        # every file written whole before this point.
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)
    return code


def _command(args: argparse.Namespace) -> int:
    """Run the parsed command; returns the exit status."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("papermill").setLevel(logging.WARNING)  # one line per cell is noise in a batch
    root = Path.cwd()
    try:
        if args.command == "run":
            from evallib.pipeline.batch import run_batch, summary_table

            result = run_batch(
                args.sites,
                root=root,
                params_dir=args.params_dir,
                outputs=args.outputs,
                jobs=args.jobs,
                progress=not args.no_progress,
                force=args.force,
                scheduler=args.scheduler,
                executor=args.executor,
                wait=args.wait,
                site_timeout=args.site_timeout,
            )
            print(summary_table(result))
            _warn(result.problems)
            print(f"Published {args.outputs / 'site' / 'index.html'}")
            if result.failed:
                print(
                    (
                        f"1 site failed; its notebook with the traceback is in outputs/{result.failed[0].site_id}/failed.ipynb"
                        if len(result.failed) == 1
                        else f"{len(result.failed)} sites failed; their notebooks with the traceback are in outputs/<site>/failed.ipynb"
                    ),
                    file=sys.stderr,
                )
            return result.exit_code
        if args.command == "validate":
            from evallib.pipeline.preflight import preflight
            from evallib.protocol.params import find_params

            jobs = preflight(find_params(args.params_dir, args.sites), root)
            print(f"{plural(len(jobs), 'params file')} valid")
            return 0
        if args.command == "make-params":
            from evallib.protocol.generator import write_params

            written = write_params(args.params_dir, overwrite=args.overwrite, update=args.update)
            print(
                f"wrote {plural(len(written), 'params file')} under {args.params_dir}/ (hand-edited files kept unless --overwrite)"
            )
            return 0
        if args.command == "schema":
            from evallib.protocol.schema import SCHEMA_NAME, schema_text, write_schema

            target = args.params_dir / SCHEMA_NAME
            if args.check:
                current = target.is_file() and target.read_text(encoding="utf-8") == schema_text()
                print(f"{target} is {'up to date' if current else 'out of date: run `evallib schema`'}")
                return 0 if current else 1
            print(f"wrote {write_schema(args.params_dir)}")
            return 0
        if args.command == "calibrate":
            from evallib.pipeline.calibrate import run_calibration

            summary = run_calibration(
                root,
                params_dir=args.params_dir,
                outputs=args.outputs,
                jobs=args.jobs,
                max_fake_sites=args.max_fake_sites,
                progress=not args.no_progress,
            )
            chosen = summary[summary["chosen"]]
            print(chosen[["design", "estimator", "rejection_rate", "median_width"]].to_string(index=False))
            print(f"Wrote {args.params_dir / 'calibration.csv'}; run `evallib make-params --update` to apply it")
            return 0
        if args.command == "design":
            from evallib.pipeline.design import run_design

            if args.all or args.write_choices:
                return _preregister(root, args)
            if args.site is None:
                raise EvalLibError("evallib design: name a site (e.g. V01), or pass --all --write-choices")
            print(
                run_design(
                    root,
                    args.site,
                    args.params_dir,
                    args.hoped_for,
                    args.share,
                    args.out,
                    write=args.write,
                    force=args.force,
                )
            )
            return 0
        if args.command == "publish":
            from evallib.pipeline import executor as fast
            from evallib.pipeline.lock import check_writable, outputs_lock
            from evallib.pipeline.pool import sigterm_as_interrupt
            from evallib.pipeline.publish import publish

            outputs = args.outputs.resolve()
            if not outputs.is_dir():
                raise EvalLibError(f"no outputs folder {args.outputs}; run `evallib run` first")
            check_writable(outputs)
            with outputs_lock(outputs, wait=args.wait), sigterm_as_interrupt():
                done = publish(
                    root,
                    outputs,
                    params_dir=args.params_dir,
                    executor="forked" if fast.available() else "kernel",
                    timeout=args.site_timeout,
                )
            _warn(done.problems)
            print(f"Published {args.outputs / 'site' / 'index.html'} (programme: {done.programme.status})")
            return 0
    except EvalLibError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        from evallib.protocol.writing import fault_message, is_fault

        if not is_fault(exc):
            raise
        # A full disk, no inodes, a read-only or immutable folder: one line, no traceback, no absolute path.
        folder = None if exc.filename else getattr(args, "outputs", None)  # e.g. the lock file's write
        print(f"error: {fault_message(exc, folder)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished sites are published; unfinished ones keep their previous reports", file=sys.stderr)
        return 130
    return 2


def _preregister(root: Path, args: argparse.Namespace) -> int:
    """``evallib design --all --write-choices``: every evaluable site's pool choice to params/design_pools.csv."""
    if not (args.all and args.write_choices) or args.site is not None or args.write:
        raise EvalLibError("evallib design: use --all and --write-choices together, without a site or --write")
    from evallib.pipeline.preregister import write_choices

    table, skipped = write_choices(root, args.params_dir, args.jobs)
    _warn([f"design step skipped {s}" for s in skipped])
    changed = table[table["pool"] != "protocol"]
    print(f"{len(changed)} of {len(table)} sites change pool: {', '.join(changed['site_id']) or 'none'}")
    print(f"Wrote {args.params_dir / 'design_pools.csv'}; run `evallib make-params --update` to apply it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
