"""The one check of text that may be published: names, reasons, notes, labels, attributions and codes.

Params files and data files may come from collaborators, and every text field they hold can reach a
page, a figure, a download or a terminal. Characters that are invisible or change how the text around
them is shown are refused wherever text enters (params validation and data file validation both call
:func:`text_problem`):

* control characters, C0 (NUL, BEL, ESC, line breaks, ...) and C1 (U+0080-U+009F, e.g. U+0085 next line)
  and DEL: they end lines, ring bells or start terminal escape sequences;
* bidirectional overrides, embeddings, isolates and marks (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
  U+061C): "Trojan source" text that shows one thing and sorts or reads as another;
* the line and paragraph separators U+2028 and U+2029: line breaks in disguise (JavaScript and many
  editors treat them as one).
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SEPARATOR = re.compile("[\u2028\u2029]")
#: Any character :func:`text_problem` refuses (for vectorised checks of many values).
UNPUBLISHABLE = "|".join(p.pattern for p in (_CONTROL, _BIDI, _SEPARATOR))


def text_problem(value: str, *, line_breaks: bool = False) -> str | None:
    r"""Why ``value`` cannot be published as it is (a phrase to follow "field 'x' ..."), or None.

    ``line_breaks=True`` allows ``\\n`` (free text such as notes); every other character above is refused.
    The phrase names the kind of character and its code point, never the text around it.
    """
    text = value.replace("\n", "") if line_breaks else value
    m = _CONTROL.search(text)
    if m:
        return f"holds a control character (U+{ord(m.group()):04X}, e.g. a line break, NUL or escape)"
    m = _BIDI.search(text)
    if m:
        return f"holds a bidirectional control character (U+{ord(m.group()):04X}), which reorders the text shown"
    m = _SEPARATOR.search(text)
    if m:
        return f"holds a line or paragraph separator (U+{ord(m.group()):04X})"
    return None


#: The fix to suggest for any :func:`text_problem`.
TEXT_FIX = "Remove it: use plain text on one line, without control or direction-changing characters."
