"""Text as the service shows it, whatever people typed. (NUL and lone surrogates never get in:
the kit refuses them in every request with a 422 naming the field.)"""

from __future__ import annotations

import re

# Unpaired UTF-16 surrogates: UTF-8 cannot encode them.
_SURROGATE = re.compile("[\ud800-\udfff]")


# XML 1.0 (section 2.2) allows only #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF].
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
REPLACEMENT = "\ufffd"


def xml_text(text: str) -> str:
    """`text` with every character XML 1.0 forbids (control characters such as U+0019, U+FFFE,
    lone surrogates) replaced by U+FFFD, so a document holding it stays well-formed."""
    return _NOT_XML.sub(REPLACEMENT, text)


def unicode_text(text: str) -> str:
    """`text` with lone surrogates replaced, so it encodes as UTF-8 (JSON escapes the rest)."""
    return _SURROGATE.sub(REPLACEMENT, text)
