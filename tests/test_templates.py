"""The pages' templates (app/templates/, app.kit.templates): all of them compile, every value
is escaped, in text and in attributes alike, and a name missing from a page is an error."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError

from app.kit.templates import ENV, render

HOSTILE = "\"'><script>alert(1)</script>&"


def test_every_template_compiles() -> None:
    names = ENV.list_templates()
    assert {"base.html", "style.css", "ops/order.html", "payments/result.html",
            "demo/shop.html"} <= set(names)
    for name in names:
        ENV.get_template(name)


def test_values_are_escaped_in_text_and_in_single_quoted_attributes() -> None:
    page = render("ops/login.html", csrf=None, next=HOSTILE, problem=HOSTILE)
    assert "<script>" not in page and HOSTILE not in page
    assert "value='&#34;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;'" in page
    assert "id='error'>&#34;&#39;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;<" in page


def test_a_name_missing_from_the_context_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(UndefinedError):
        render("ops/login.html", csrf=None, next="/ops")  # no `problem`
