#!/usr/bin/env python3
"""Remove each reliability guard once and check that its test fails (the README's Reliability table).

    .venv/bin/python tools/check_guards.py          # every guard (about 10 minutes on 2 cores)
    .venv/bin/python tools/check_guards.py 3 7      # only guards 3 and 7

Each entry replaces one line of a guard with a no-op, runs the test that enforces it, and restores the file.
Prints CAUGHT (the test failed, as it must) or MISSED for each; exits 1 when any guard was MISSED.
"""

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
MUTANTS = [
    (
        "evallib/reporting/publishing.py",
        '    if not signature_ok(site_record_fields(folder.name, run), run.get("signature")):',
        "    if False:",
        "tests/test_forged_outputs.py -k forged_site",
    ),
    (
        "evallib/reporting/publishing.py",
        "    if folder.name in (tracked_outputs(folder.parent) if tracked is None else tracked):",
        "    if False:",
        "tests/test_forged_outputs.py -k git_tracks",
    ),
    (
        "evallib/evaluation/record/fingerprint.py",
        '    return combine({"params": protocol.digest(), "data": data, "code": code_digest(), "source": state})',
        '    return combine({"params": protocol.digest(), "data": data, "code": code_digest()})',
        "tests/test_forged_outputs.py -k new_commit",
    ),
    (
        "evallib/reporting/static_site.py",
        '    spreadsheet_safe(tidy).to_csv(folder / "results.csv", index=False, lineterminator="\\r\\n")',
        '    tidy.to_csv(folder / "results.csv", index=False, lineterminator="\\r\\n")',
        "tests/test_csv_injection.py -k every_csv",
    ),
    (
        "evallib/sources/files.py",
        "            _check_parquet_size(data, shown)\n",
        "",
        "tests/test_input_bounds.py -k bomb",
    ),
    (
        "evallib/sources/text.py",
        "    m = _BIDI.search(text)\n",
        "    m = None\n",
        "tests/test_text_fields.py -k every_text_field",
    ),
    (
        "evallib/reporting/publishing.py",
        "    if _URL_CREDENTIALS.search(html):",
        "    if False:",
        "tests/test_publish_scan.py -k credentials",
    ),
    (
        "evallib/pipeline/pool.py",
        '                yield job, on_error(job, f"the worker process running it died ({how})")',
        "                raise RuntimeError('pool broken')",
        "tests/test_faults.py::test_a_dead_worker_fails_only_its_own_site",
    ),
    (
        "evallib/pipeline/pool.py",
        "    parent = os.getppid()\n    done = False",
        "    return\n    parent = os.getppid()\n    done = False",
        "tests/test_faults.py::test_a_killed_batch_takes_its_workers_with_it",
    ),
    (
        "evallib/pipeline/lock.py",
        "        lock.acquire(poll_interval=poll)",
        "        pass",
        "tests/test_faults.py::test_a_second_run_refuses_while_one_holds_the_outputs",
    ),
    (
        "evallib/pipeline/lock.py",
        '    return text if _HOLDER.fullmatch(text) else "another process"',
        "    return text",
        "tests/test_lock_platform.py::test_a_holder_record_that_is_a_link_or_foreign_is_never_echoed",
    ),
    (
        "evallib/reporting/board_paper.py",
        "        if _plain_file(old_pdf) and _plain_file(old_html)",
        "        if old_pdf.exists() and old_html.exists()",
        "tests/test_board_paper.py::test_a_planted_link_in_the_previous_site_is_never_copied_into_the_papers",
    ),
    (
        "evallib/reporting/publishing.py",
        "        if _sha256(folder / name) != run.get(key):",
        "        if False:",
        "tests/test_faults.py::test_hand_edited_results_are_never_published",
    ),
    (
        "evallib/reporting/publishing.py",
        "        problems = scan_pages(staging, root) + scan_results(staging)",
        "        problems = scan_results(staging)",
        "tests/test_faults.py::test_a_page_that_breaks_a_rule_is_never_published",
    ),
    (
        "evallib/sources/files.py",
        "    if not any(real.is_relative_to(f) for f in folders) or any(real.is_relative_to(s) for s in _SYSTEM):",
        "    if False:",
        "tests/test_hostile.py -k symlink",
    ),
    (
        "evallib/protocol/bounds.py",
        "    return site_id.lower() in RESERVED_SITE_IDS",
        "    return False",
        "tests/test_hostile.py -k reserved",
    ),
    (
        "evallib/reporting/disclosure.py",
        "    whole = math.floor(v + 0.5)",
        "    whole = v",
        "tests/test_publishing.py -k rounded_first",
    ),
    (
        "evallib/pipeline/pool.py",
        "        old = signal.signal(signal.SIGTERM, _raise)",
        "        old = signal.getsignal(signal.SIGTERM)",
        "tests/test_faults.py::test_sigterm_takes_the_ctrl_c_path",
    ),
    (
        "evallib/evaluation/record/results_file.py",
        "    _check_not_published(out)\n",
        "",
        "tests/test_publishing.py -k exploration_never",
    ),
    (
        "evallib/pipeline/execute.py",
        "            record_failure(Path(outputs), job.site_id, reason, job.params_file)",
        "            pass",
        "tests/test_publishing.py -k runner_errors",
    ),
    (
        "evallib/pipeline/executor.py",
        "        code = 3  # anything but a clean finish is a failure",
        "        code = 0",
        "tests/test_publishing.py -k cannot_record",
    ),
    (
        "evallib/reporting/publishing.py",
        "            continue  # a removed params file removes its page; drafts never reach the public index",
        "            pass",
        "tests/test_faults.py -k removed_params",
    ),
    (
        "evallib/pipeline/publish.py",
        "    if programme_verified(outputs, chosen):",
        "    if True:",
        "tests/test_faults.py -k programme_page",
    ),
    (
        "evallib/reporting/publishing.py",
        '        value = json.loads(path.read_text(encoding="utf-8"))\n    except (OSError, ValueError):\n        return None',
        '        value = json.loads(path.read_text(encoding="utf-8"))\n    except OSError:\n        return None',
        "tests/test_faults.py -k unreadable",
    ),
    (
        "evallib/pipeline/execute.py",
        '    if prov.get("fingerprint") != job.result_fingerprint:',
        "    if False:",
        "tests/test_faults.py -k mid_run",
    ),
    (
        "evallib/reporting/publishing.py",
        "            if expected is not None and expected[sid].fingerprint != fp:",
        "            if False:",
        "tests/test_faults.py -k stale",
    ),
    (
        "evallib/reporting/disclosure.py",
        '    return SUPPRESSED if is_small(math.exp(float(value))) else f"{float(value):.{digits}f}"',
        '    return f"{float(value):.{digits}f}"',
        "tests/test_publishing.py -k log_count",
    ),
    (
        "evallib/reporting/disclosure.py",
        '    return "withheld" if any(is_small(v) for v in vals) else "indexed"',
        '    return "indexed"',
        "tests/test_publishing.py -k every_published_place",
    ),
    (
        "evallib/pipeline/notebook.py",
        "    given = {k: namespace[k] for k in PARAMETER_NAMES if namespace.get(k) is not None}",
        "    given = {k: namespace[k] for k in PARAMETER_NAMES if k in namespace}",
        "tests/test_publishing.py -k site_id_alone",
    ),
    (
        "evallib/reporting/publishing.py",
        "        if writing.check_dir(site) and not writing.check_file(site / SITE_MARKER):",
        "        if False:",
        "tests/test_hostile.py -k someone",
    ),
    (
        "evallib/protocol/safe_yaml.py",
        "            if key in seen:",
        "            if False:",
        "tests/test_hostile.py -k duplicate",
    ),
    (
        "evallib/pipeline/preflight.py",
        "        key = protocol.site_id.lower()",
        "        key = protocol.site_id",
        "tests/test_hostile.py -k differing",
    ),
    (
        "evallib/reporting/static_site.py",
        '        text = re.sub(r"(?<![\\w./-])" + re.escape(prefix.rstrip(os.sep) + os.sep), "", text)',
        '        text = text.replace(prefix + os.sep, "").replace(prefix, "")',
        "tests/test_publishing.py -k scrubbing",
    ),
    (
        "evallib/sources/panel.py",
        '    return repr(text) if _SHOWABLE.match(text) else f"(text of {len(text)} characters)"',
        "    return repr(text)",
        "tests/test_hostile.py -k 'secret and count'",
    ),
    (
        "evallib/reporting/publishing.py",
        'SCANNED = ("*.html", "*.csv", "*.json")',
        'SCANNED = ("*.html",)',
        "tests/test_templates.py -k downloads_are_scanned",
    ),
    (
        "evallib/reporting/templating.py",
        "        autoescape=True,",
        "        autoescape=False,",
        "tests/test_templates.py",
    ),
    (
        "evallib/protocol/writing.py",
        '    if not stat.S_ISDIR(mode):\n        raise _refuse(path, mode, "a folder")',
        '    if False:\n        raise _refuse(path, mode, "a folder")',
        "tests/test_write_links.py -k 'linked_site_folder or staging_folder'",
    ),
    (
        "evallib/pipeline/folders.py",
        "        restored |= writing.restore_old(old, final, _complete(final, name), keep=FAILURE_FILES)",
        "        writing.remove_tree(old)",
        "tests/test_swaps.py",
    ),
    (
        "evallib/pipeline/pool.py",
        "                    if w.deadline is not None and time.monotonic() >= w.deadline:",
        "                    if False:",
        "tests/test_site_timeout.py::test_the_pool_stops_a_task_past_its_limit_with_every_process_it_started",
    ),
    (
        "evallib/reporting/static_site.py",
        "        if writing.is_fault(exc):",
        "        if False:",
        "tests/test_write_faults.py::test_a_full_disk_while_publishing_is_one_line_and_leaves_the_site_as_it_was",
    ),
    (
        "evallib/reporting/publishing.py",
        "        problems = scan_pages(staging, root) + scan_results(staging)",
        "        problems = scan_pages(staging, root)",
        "tests/test_agreement_and_markers.py -k publishing_refuses",
    ),
    (
        "evallib/methods/inference/decision.py",
        "    return bool(p is not None and math.isfinite(p) and p <= alpha)",
        "    return bool(p is not None and math.isfinite(p) and p < alpha)",
        "tests/test_decision_rule.py -k p_equal_alpha",
    ),
    (
        "evallib/methods/inference/decision.py",
        "        return np.asarray(p, float) <= alpha  # NaN compares False: no p-value, no rejection",
        "        return np.asarray(p, float) < alpha",
        "tests/test_decision_rule.py -k every_headline_interval",
    ),
    (
        "evallib/reporting/words.py",
        '    if verdict != "confirmed":',
        "    if False:",
        "tests/test_agreement_and_markers.py -k marker_follows",
    ),
    (
        "evallib/protocol/staggered.py",
        "    if missing:",
        "    if False:",
        "tests/test_staggered_params.py -k without_a_start",
    ),
    (
        "evallib/protocol/staggered.py",
        "    if extra:",
        "    if False:",
        "tests/test_staggered_params.py -k not_treated",
    ),
    (
        "evallib/pipeline/preflight.py",
        "                    problem = staggered_data_problem(protocol, periods, units)",
        '                    problem = ""',
        "tests/test_staggered_params.py -k 'outside_the_data or without_comparison'",
    ),
    (
        "evallib/pipeline/dask_warm.py",
        "        problem = _report_problem(job, files)",
        "        problem = None",
        "tests/test_dask_warm.py -k does_not_match_its_record",
    ),
]
missed = 0
only = sys.argv[1:]
for i, (path, old, new, test) in enumerate(MUTANTS):
    if only and str(i) not in only:
        continue
    p = ROOT / path
    text = p.read_text()
    assert text.count(old) == 1, (i, path, old)
    p.write_text(text.replace(old, new))
    try:
        r = subprocess.run(
            f"{sys.executable} -m pytest -q -x -p no:cacheprovider {test}",
            shell=True,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        verdict = "CAUGHT" if r.returncode not in (0, 5) else "MISSED"  # 5: no test selected
        missed += verdict == "MISSED"
        print(i, verdict, path, test, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "", flush=True)
    finally:
        p.write_text(text)
sys.exit(1 if missed else 0)
