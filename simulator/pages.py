"""Plain HTML for the payment window and receipts. No JS framework; every value escaped."""

from __future__ import annotations

from html import escape

from simulator.clock import format_kst
from simulator.config import Merchant
from simulator.store import Payment

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.3rem} table{border-collapse:collapse;width:100%;margin:1rem 0}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #ddd}
.actions{display:flex;gap:.5rem;flex-wrap:wrap} form{margin:0}
button{font-size:1rem;padding:.5rem 1rem;cursor:pointer}
#approve{background:#1565c0;color:#fff;border:0} .note{color:#666;font-size:.9rem}
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def page(title: str, body: str) -> str:
    return (
        "<!doctype html>\n<html lang=\"ko\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


def _table(rows: list[tuple[str, object]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def payment_window(payment: Payment, merchant: Merchant, public_url: str) -> str:
    base = f"{public_url}/pay/{payment.token}"
    is_account = payment.pgcode == "virtualaccount"
    extra = ""
    if payment.rules.result_pgcodes:
        options = "".join(
            f"<option value=\"{_e(code)}\">{_e(code)}</option>"
            for code in payment.rules.result_pgcodes
        )
        extra += (
            "<label>paid with <select name=\"result_pgcode\" id=\"result-pgcode\">"
            f"{options}</select></label> "
        )
    if not payment.amount_given:
        extra += (
            "<label>voucher amount <input type=\"number\" name=\"amount\" id=\"voucher-amount\" "
            "min=\"1\" value=\"10000\"></label> "
        )
    approve_label = "Issue account (계좌 발급)" if is_account else "Approve (결제)"
    amount = f"{payment.amount:,}원" if payment.amount_given else "(buyer's voucher)"
    body = (
        f"<h1>Payletter simulator · {_e(payment.rules.label)}</h1>"
        + _table([
            ("merchant", f"{merchant.display_name} ({merchant.client_id})"),
            ("order_no", payment.order_no),
            ("product", payment.product_name),
            ("amount", amount),
            ("method", f"{payment.rules.label} ({payment.pgcode})"),
            ("autopay", "Y" if payment.autopay_flag else "N"),
            ("location", payment.location),
        ])
        + "<div class=\"actions\">"
        f"<form method=\"post\" action=\"{_e(base)}/approve\">{extra}"
        f"<button type=\"submit\" id=\"approve\">{_e(approve_label)}</button></form>"
        f"<form method=\"post\" action=\"{_e(base)}/decline\">"
        "<button type=\"submit\" id=\"decline\">Decline (실패)</button></form>"
        f"<form method=\"post\" action=\"{_e(base)}/cancel\">"
        "<button type=\"submit\" id=\"cancel\">Cancel (취소)</button></form>"
        "</div><p class=\"note\">This is a local simulator. No money moves.</p>"
    )
    return page("Payletter simulator", body)


def return_form(action_url: str, fields: dict[str, str], title: str) -> str:
    """The browser's POST of the result to return_url: auto-submitted, with a button too."""
    inputs = "".join(
        f"<input type=\"hidden\" name=\"{_e(name)}\" value=\"{_e(value)}\">"
        for name, value in fields.items()
    )
    body = (
        f"<h1>{_e(title)}</h1>"
        f"<form id=\"return-form\" method=\"post\" action=\"{_e(action_url)}\" "
        "enctype=\"application/x-www-form-urlencoded\" accept-charset=\"utf-8\">"
        f"{inputs}<button type=\"submit\" id=\"return-submit\">Continue to the shop</button>"
        "</form>"
        "<script>document.getElementById(\"return-form\").submit();</script>"
    )
    return page(title, body)


def message_page(title: str, message: str) -> str:
    return page(title, f"<h1 id=\"message-title\">{_e(title)}</h1><p>{_e(message)}</p>")


def closed_page(payment: Payment) -> str:
    return page(
        "Payment window closed",
        "<h1 id=\"closed\">Payment window closed</h1>"
        f"<p>{_e(payment.rules.label)} does not return to the shop's cancel page. "
        "You can close this window.</p>",
    )


def already_processed_page(payment: Payment) -> str:
    return message_page(
        "Payment already processed",
        f"Order {payment.order_no} is {payment.phase.value}; this window has nothing left to do.",
    )


def receipt_info_page(payment: Payment) -> str:
    assert payment.approved_at is not None
    rows: list[tuple[str, object]] = [
        ("tid", payment.tid),
        ("cid", payment.cid),
        ("order_no", payment.order_no),
        ("product", payment.product_name),
        ("method", payment.reported_pgcode),
        ("amount", f"{payment.amount:,}원"),
        ("transaction_date", format_kst(payment.approved_at)),
    ]
    rows += [
        (f"cancel ({c.kind})", f"{c.amount:,}원 at {format_kst(c.cancelled_at)}")
        for c in payment.cancels
    ]
    title = "거래 내역 확인서"
    return page(title, f"<h1>{title} (transaction receipt)</h1>" + _table(rows))


def cash_receipt_page(payment: Payment, action_url: str, return_url: str, issued: bool) -> str:
    rows: list[tuple[str, object]] = [
        ("tid", payment.tid),
        ("order_no", payment.order_no),
        ("amount", f"{payment.amount:,}원"),
    ]
    if issued:
        rows.append(("cash receipt", payment.cash_receipt.get("cid", "")))
        action = (
            f"<p id=\"issued\">Issued.</p><a id=\"back\" href=\"{_e(return_url)}\">"
            "Back to the shop</a>"
        )
    else:
        action = (
            f"<form method=\"post\" action=\"{_e(action_url)}\">"
            "<button type=\"submit\" id=\"issue\">Issue cash receipt</button></form>"
        )
    return page("현금영수증", "<h1>현금영수증 (cash receipt)</h1>" + _table(rows) + action)
