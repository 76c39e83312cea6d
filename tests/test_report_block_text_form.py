"""A report block's text form (the notebook's text/plain beside its HTML) is a short summary, not the HTML again."""

from __future__ import annotations

from evallib.reporting.blocks import HTMLBlock


def test_a_report_blocks_text_form_does_not_repeat_its_html() -> None:
    html = "<p>" + "x" * 50_000 + "</p>"
    block = HTMLBlock(html)
    text = repr(block)
    assert "xxxx" not in text and len(text) < 80
    assert "50,007 characters of HTML" in text
    assert block._repr_html_() == html and str(block) == html  # the page and templates still get the HTML
