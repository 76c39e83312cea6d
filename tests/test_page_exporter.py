"""The report pages' exporter: nbconvert's HTML exporter without its BeautifulSoup pass, giving the same page (up to
attribute order and whitespace) for the notebooks the batch renders, whose figures all carry alternative text."""

from __future__ import annotations

import nbformat
import pytest
from bs4 import BeautifulSoup
from matplotlib.figure import Figure

from evallib.reporting.static_site import _exporter, published_cells
from evallib.reporting.templating import figure_html


def _notebook() -> nbformat.NotebookNode:
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([1, 2, 3], [2, 1, 3])
    html = f"<section class='summary'><p>A &amp; B</p>{figure_html(fig, 'a line <over> time')}<br><table><tr><td>1</td></tr></table></section>"
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    cell = nbformat.v4.new_code_cell("report.summary(evaluation)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": "<HTMLBlock>"})]
    stream = nbformat.v4.new_code_cell("print('x')")
    stream.outputs = [nbformat.v4.new_output("stream", name="stdout", text="words <b>\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("## Findings\n\nWhat *every* method says."), cell, stream]
    return nb


@pytest.mark.unit
def test_pages_are_nbconverts_pages_without_the_reserialisation() -> None:
    from nbconvert import HTMLExporter

    nbconverts = HTMLExporter(
        template_name="basic",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        anchor_link_text="",
    )
    nb = _notebook()
    nb.cells = published_cells(nb.cells)
    ours, _ = _exporter().from_notebook_node(nb)
    theirs, _ = nbconverts.from_notebook_node(nb)
    assert theirs == str(BeautifulSoup(ours, features="html.parser"))
    assert "report.summary" not in ours and "Findings" in ours and "words &lt;b&gt;" in ours
    soup = BeautifulSoup(ours, features="html.parser")
    assert soup.select("img") and not soup.select("img:not([alt])")  # what nbconvert's pass would have filled in
