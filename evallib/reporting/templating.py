"""Every published page and report block is rendered here, from the Jinja2 templates in ``templates/``.

One :class:`jinja2.Environment` with autoescaping on for every template: any value a template
prints (a site name, notes, a unit code, a reason) is HTML-escaped unless it is
:class:`markupsafe.Markup` made by another template. Figures are embedded as SVG (text kept as
text: crisp at any width and a third of the size of a high-dpi PNG) in ``<img>`` tags.
"""

from __future__ import annotations

import base64
import io
from functools import cache
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup
from matplotlib import rc_context
from matplotlib.figure import Figure

from evallib.methods.base.plotting import FixedLayout

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: Written into every page the templates make (checked by the tests of the published site).
GENERATOR = "evallib templates"
#: SVG output that is the same for the same figure (no date, fixed ids) and keeps text as text.
_SVG_RC: dict[RcKeyType, Any] = {"svg.fonttype": "none", "svg.hashsalt": "evallib"}


@cache
def environment() -> jinja2.Environment:
    """The one template environment: autoescape on for every template, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evallib.reporting", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.globals["generator"] = GENERATOR
    return env


def render(name: str, **context: Any) -> Markup:
    """Render template ``name`` with ``context``; the result is safe HTML."""
    return Markup(environment().get_template(name).render(**context))


def stylesheet() -> Markup:
    """The one stylesheet (``templates/style.css``), for inlining in a page's ``<style>``."""
    loader = environment().loader
    assert loader is not None  # environment() always has its package loader
    source = loader.get_source(environment(), "style.css")[0]
    return Markup(source)


def figure_src(fig: Figure) -> str:
    """A figure as an SVG data URI for an ``<img>`` (text as text, no timestamps, stable ids)."""
    buf = io.BytesIO()
    engine = fig.get_layout_engine()
    fixed = engine if isinstance(engine, FixedLayout) else None
    if fixed is not None:  # margins set once from the text; no layout draw before the draw that saves it
        fixed.execute(fig)
        fig.set_layout_engine(None)  # (a placeholder engine would still make savefig draw twice)
    try:
        with rc_context(_SVG_RC):
            fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    finally:
        if fixed is not None:
            fig.set_layout_engine(fixed)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def figure_html(fig: Figure, alt: str, cls: str = "") -> Markup:
    """An embedded figure with its alternative text (escaped); ``cls`` adds a class (e.g. the figure a board
    paper takes from the report).
    """
    return render("figure.html.j2", src=figure_src(fig), alt=alt, cls=cls)
