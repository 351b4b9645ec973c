"""What the ops page shows, as HTML fragments: pure functions from rows to escaped Markup.

No queries and no HTTP here (that is `app.ops.endpoints`); every value goes through
`app.ops.html.render`, which escapes it. Times are shown in Korea time, zone named.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from app.models import AuditEntry, Delivery, Order, OrderTransition, OutboxEvent, Refund
from app.ops.html import Markup, join, render, segment, url
from app.orders.history import TimelineEntry
from app.orders.queries import FILTER_PARAMS, SORTS
from app.orders.schemas import OrderOut
from app.orders.states import OrderStatus
from app.payletter.methods import METHODS
from app.payletter.models import KST

STYLE = Markup("""
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1f2328;
  background:#f6f8fa;font-size:15px}
header{background:#24292f;color:#fff;padding:.55rem 1.2rem;display:flex;gap:1.1rem;
  align-items:center;flex-wrap:wrap}
header .brand{font-weight:600;margin-right:.6rem}
header a{color:#d0d7de;text-decoration:none}header a.on,header a:hover{color:#fff;
  text-decoration:underline}
header form{margin:0 0 0 auto}
header button{background:none;border:1px solid #8c959f;color:#fff;border-radius:4px;
  padding:.2rem .6rem;cursor:pointer}
main{padding:1rem 1.2rem 3rem;max-width:84rem}
h1{font-size:1.35rem;margin:.3rem 0 1rem}h2{font-size:1.1rem;margin:1.6rem 0 .6rem}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.88rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eaeef2;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.time{white-space:nowrap;font-variant-numeric:tabular-nums}
table.fields th{width:13rem}
.status{display:inline-block;padding:0 .45rem;border-radius:.7rem;font-size:.8rem;
  background:#eaeef2;white-space:nowrap}
.status-paid{background:#dafbe1}.status-needs_review{background:#ffcecb}
.status-failed,.status-abandoned{background:#fff1e5}
.status-cancelled,.status-partially_cancelled{background:#ddf4ff}
.status-pending,.status-created,.status-awaiting_deposit{background:#fff8c5}
.kind{display:inline-block;min-width:5.5rem;font-weight:600}
form.filters{display:grid;grid-template-columns:repeat(auto-fill,minmax(10.5rem,1fr));
  gap:.45rem .8rem;background:#fff;border:1px solid #d0d7de;padding:.8rem;margin-bottom:1rem}
form.filters label{display:flex;flex-direction:column;font-size:.8rem;color:#57606a;gap:.15rem}
input,select{font:inherit;padding:.3rem .4rem;border:1px solid #8c959f;border-radius:4px;
  background:#fff}
button,.button{font:inherit;padding:.35rem .9rem;border-radius:4px;border:1px solid #1f883d;
  background:#1f883d;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
.button.plain,button.plain{background:#fff;color:#1f2328;border-color:#8c959f}
button.danger{background:#cf222e;border-color:#cf222e}
.actions{display:flex;gap:.6rem;align-items:end}
.totals{display:flex;gap:2rem;margin:.6rem 0;flex-wrap:wrap}
.totals b{font-variant-numeric:tabular-nums}
.pager{display:flex;gap:1rem;margin:.8rem 0}
.error{background:#ffebe9;border:1px solid #cf222e;padding:.6rem .8rem;margin:0 0 1rem}
.notice{background:#ddf4ff;border:1px solid #54aeff;padding:.6rem .8rem;margin:0 0 1rem}
.muted{color:#6e7781}
.summary{background:#fff;border:1px solid #d0d7de;padding:.6rem .8rem}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.8rem}
code{font-size:.85em}
.box{background:#fff;border:1px solid #d0d7de;padding:1rem;max-width:40rem}
.login{max-width:26rem;margin:4rem auto}
.login input{width:100%;margin:.4rem 0 1rem}
.legend{display:flex;gap:1rem;flex-wrap:wrap;margin:.5rem 0;font-size:.85rem}
.swatch{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-1px}
svg text{font-size:11px;fill:#57606a}
""")

NAV = (("orders", "/ops", "Orders"), ("review", "/ops/review", "Needs review"),
       ("totals", "/ops/totals", "Daily totals"))

DASH = Markup("<span class='muted'>—</span>")


NOTHING = Markup("")


def document(title: str, body: Markup, *, nav: Markup = NOTHING) -> Markup:
    return render(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        "<meta name='referrer' content='no-referrer'>"
        "<title>{title} · Payletter gateway ops</title><style>{style}</style></head>"
        "<body>{nav}<main><h1>{title}</h1>{body}</main></body></html>",
        title=title, style=STYLE, nav=nav, body=body)


def navigation(active: str, csrf: str | None) -> Markup:
    """The header; `csrf` None: not signed in, "": a bearer caller (no sign-out form)."""
    links = join(render("<a href='{href}' class='{cls}' id='nav-{key}'>{label}</a>",
                        href=href, cls="on" if key == active else "", key=key, label=label)
                 for key, href, label in NAV)
    sign_out = Markup("")
    if csrf:
        sign_out = render("<form method='post' action='/ops/logout'>"
                          "<input type='hidden' name='csrf' value='{csrf}'>"
                          "<button type='submit' id='sign-out'>Sign out</button></form>",
                          csrf=csrf)
    elif csrf is None:
        links = render("<a href='/ops/login'>Sign in</a>")
    return render("<header><span class='brand'>Payletter gateway · ops</span>{links}{out}"
                  "</header>", links=links, out=sign_out)


# -- values -------------------------------------------------------------------------------

def kst(value: datetime | None) -> Markup:
    if value is None:
        return DASH
    return render("{t}", t=value.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S KST"))


def won(amount: int | None) -> Markup:
    return DASH if amount is None else render("{n} won", n=f"{amount:,}")


def text(value: object) -> Markup:
    return DASH if value is None or value == "" else render("{v}", v=value)


def as_json(value: Any) -> Markup:
    if not value:
        return DASH
    return render("<pre>{v}</pre>", v=json.dumps(value, ensure_ascii=False, indent=1,
                                                  sort_keys=True, default=str))


def status_badge(status: str) -> Markup:
    return render("<span class='status status-{s}'>{s}</span>", s=status)


def order_href(order_no: str) -> str:
    return f"/ops/orders/{segment(order_no)}"


def order_link(order_no: str) -> Markup:
    return render("<a href='{href}' class='order-link'>{no}</a>", href=order_href(order_no),
                  no=order_no)


def error_box(message: str) -> Markup:
    return render("<p class='error' id='error'>{m}</p>", m=message)


# -- the order list -----------------------------------------------------------------------

def _select(name: str, options: Sequence[tuple[str, str]], current: str) -> Markup:
    if current and current not in {value for value, _ in options}:
        options = [*options, (current, current)]
    return render("<select name='{name}' id='f-{name}'>{options}</select>", name=name,
                  options=join(render("<option value='{v}'{sel}>{label}</option>", v=value,
                                      label=label,
                                      sel=Markup(" selected" if value == current else ""))
                               for value, label in options))


def _input(name: str, current: str, kind: str = "text", size: int = 40) -> Markup:
    return render("<input type='{kind}' name='{name}' id='f-{name}' value='{v}' "
                  "maxlength='{size}'>", kind=kind, name=name, v=current, size=size)


def filter_form(params: Mapping[str, str]) -> Markup:
    """A GET form using the filter names of GET /orders."""
    def cur(name: str) -> str:
        return params.get(name, "")

    statuses = [("", "any")] + [(s.value, s.value) for s in OrderStatus]
    methods = [("", "any")] + [(code, f"{code} ({rule.label})")
                               for code, rule in sorted(METHODS.items())]
    sorts = [(f"{sign}{column}", f"{column} {'↓' if sign else '↑'}")
             for column in SORTS for sign in ("-", "")]
    fields: list[tuple[str, Markup]] = [
        ("status", _select("status", statuses, cur("status"))),
        ("pgcode", _select("pgcode", methods, cur("pgcode"))),
        ("needs_review", _select("needs_review", [("", "any"), ("true", "only"),
                                                  ("false", "hide")], cur("needs_review"))),
        ("user_id", _input("user_id", cur("user_id"), size=50)),
        ("order_no", _input("order_no", cur("order_no"))),
        ("tid", _input("tid", cur("tid"))),
        ("client_id", _input("client_id", cur("client_id"), size=20)),
        ("created_from", _input("created_from", cur("created_from"), "date", 10)),
        ("created_to", _input("created_to", cur("created_to"), "date", 10)),
        ("paid_from", _input("paid_from", cur("paid_from"), "date", 10)),
        ("paid_to", _input("paid_to", cur("paid_to"), "date", 10)),
        ("sort", _select("sort", sorts, cur("sort") or "-created_at")),
        ("limit", _input("limit", cur("limit") or "50", "number", 3)),
    ]
    known = {name for name, _ in fields}
    fields += [(name, _input(name, cur(name))) for name in FILTER_PARAMS if name not in known]
    labels = join(render("<label for='f-{name}'>{name}{field}</label>", name=name, field=field)
                  for name, field in fields)
    return render("<form method='get' action='/ops' class='filters' id='filters'>{labels}"
                  "<div class='actions'><button type='submit' id='filter'>Filter</button>"
                  "<a class='button plain' href='/ops' id='reset'>Reset</a></div></form>",
                  labels=labels)


def orders_table(orders: Sequence[Order], *, review: bool = False) -> Markup:
    if not orders:
        return render("<p class='muted' id='no-orders'>No orders match.</p>")
    head = ("<tr><th>order_no</th><th>created (KST)</th><th>status</th><th>method</th>"
            "<th class='num'>amount</th><th class='num'>refunded</th><th>product_name</th>"
            "<th>user_id</th><th>user_name</th>"
            + ("<th>review_reason</th>" if review else "<th>paid (KST)</th>") + "</tr>")
    rows = join(render(
        "<tr class='order-row' data-order-no='{no}'><td>{link}</td><td class='time'>{created}"
        "</td><td>{status}</td><td>{pgcode}</td><td class='num'>{amount}</td>"
        "<td class='num'>{refunded}</td><td>{product}</td><td>{user_id}</td><td>{user_name}"
        "</td><td>{last}</td></tr>",
        no=o.order_no, link=order_link(o.order_no), created=kst(o.created_at),
        status=status_badge(o.status), pgcode=o.pgcode, amount=won(o.amount),
        refunded=won(o.cancelled_amount) if o.cancelled_amount else DASH,
        product=o.product_name, user_id=o.user_id, user_name=text(o.user_name),
        last=text(o.review_reason) if review else kst(o.paid_at))
        for o in orders)
    return render("<table id='orders'><thead>{head}</thead><tbody>{rows}</tbody></table>",
                  head=Markup(head), rows=rows)


def totals_line(totals: Mapping[str, int]) -> Markup:
    return render("<div class='totals' id='totals'><span>matching orders <b id='total-count'>"
                  "{count}</b></span><span>amount <b id='total-amount'>{amount}</b></span>"
                  "<span>refunded <b id='total-refunded'>{refunded}</b></span></div>",
                  count=f"{totals['count']:,}", amount=won(totals["amount"]),
                  refunded=won(totals["refunded"]))


def pager(path: str, params: Sequence[tuple[str, str]], next_cursor: str | None,
          on_later_page: bool) -> Markup:
    links = []
    if on_later_page:
        links.append(render("<a href='{href}' id='first-page'>« first page</a>",
                            href=url(path, params)))
    if next_cursor:
        links.append(render("<a href='{href}' id='next-page'>next page »</a>",
                            href=url(path, [*params, ("cursor", next_cursor)])))
    return render("<nav class='pager'>{links}</nav>", links=join(links)) if links else Markup("")


# -- one order ----------------------------------------------------------------------------

def order_summary(order: Order) -> Markup:
    return render(
        "<p class='summary' id='summary'>{status} · {amount} by {pgcode} · refunded {refunded}"
        " · {product} · buyer {user} · created {created}</p>", status=status_badge(order.status),
        amount=won(order.amount), pgcode=order.pgcode, refunded=won(order.cancelled_amount),
        product=order.product_name, user=order.user_id, created=kst(order.created_at))


def order_fields(order: Order) -> Markup:
    """Every field the API shows for an order, in the API's order."""
    rows = []
    for name in OrderOut.model_fields:
        value = getattr(order, name)
        if name == "status":
            shown = status_badge(value)
        elif isinstance(value, datetime):
            shown = kst(value)
        elif isinstance(value, dict):
            shown = as_json(value)
        elif name.endswith("amount") or name == "disposable_cup_deposit":
            shown = won(value)
        else:
            shown = text(value)
        rows.append(render("<tr><th>{name}</th><td id='field-{name}'>{value}</td></tr>",
                           name=name, value=shown))
    rows.append(render("<tr><th>remaining</th><td id='field-remaining'>{v}</td></tr>",
                       v=won(order.amount - order.cancelled_amount)))
    return render("<table class='fields' id='fields'>{rows}</table>", rows=join(rows))


def _detail(value: str | None) -> Markup:
    return render(" · <span class='muted'>{v}</span>", v=value) if value else Markup("")


def _what(entry: TimelineEntry) -> Markup:
    """One timeline entry's details, by the kind of record it is."""
    match entry.record:
        case Order() as o:
            return render("order created: {amount} by {pgcode} for {user}",
                          amount=won(o.amount), pgcode=o.pgcode, user=o.user_id)
        case Delivery() as d:
            return render(
                "#{id} <b>{kind}</b> from <code>{source}</code> · verification "
                "<code>{verification}</code> · outcome <code>{outcome}</code> · answered {code}"
                "{tid}{detail}", id=d.id, kind=d.kind, source=d.source_addr,
                verification=d.verification, outcome=d.outcome, code=d.response_code,
                tid=render(" · tid <code>{t}</code>", t=d.tid) if d.tid else Markup(""),
                detail=_detail(d.detail))
        case OrderTransition() as t:
            return render(
                "{frm} → {to} · event <code>{event}</code>{reason}{cause}",
                frm=status_badge(t.from_status), to=status_badge(t.to_status), event=t.event,
                reason=_detail(t.reason), cause=render(" · by delivery #{d}", d=t.delivery_id)
                if t.delivery_id else Markup(""))
        case Refund() as r:
            return render(
                "refund #{id}: {kind} {amount} requested by {by} → <b>{status}</b>{cid}{date}"
                "{error}", id=r.id, kind=r.kind, amount=won(r.amount), by=r.requested_by,
                status=r.status, cid=render(" · cid <code>{c}</code>", c=r.cid) if r.cid
                else Markup(""), date=render(" · cancelled {d}", d=kst(r.cancel_date))
                if r.cancel_date else Markup(""), error=_detail(r.error))
        case AuditEntry() as a:
            return render(
                "{actor} · <code>{action}</code> → <b>{outcome}</b>{detail}", actor=a.actor,
                action=a.action, outcome=a.outcome, detail=render(" · <code>{d}</code>",
                d=json.dumps(a.detail, ensure_ascii=False, sort_keys=True, default=str))
                if a.detail else Markup(""))
        case OutboxEvent() as e:
            return render(
                "shop event <code>{type}</code> <span class='muted'>{event_id}</span> · "
                "{status}, {attempts} attempt(s){delivered}{error}", type=e.type,
                event_id=e.event_id, status=e.status, attempts=e.attempts,
                delivered=render(" · delivered {d}", d=kst(e.delivered_at)) if e.delivered_at
                else Markup(""), error=_detail(e.last_error))


def timeline_table(entries: Sequence[TimelineEntry]) -> Markup:
    rows = join(render("<tr class='timeline-{kind}' data-id='{id}' data-at='{iso}'>"
                       "<td class='time'>{at}</td><td><span class='kind'>{kind}</span></td>"
                       "<td>{what}</td></tr>", kind=e.kind, id=e.id, iso=e.at.isoformat(),
                       at=kst(e.shown), what=_what(e)) for e in entries)
    return render("<table id='timeline'><thead><tr><th>when (KST)</th><th>what</th>"
                  "<th>details</th></tr></thead><tbody>{rows}</tbody></table>", rows=rows)


def cancel_form(order: Order, csrf: str) -> Markup:
    remaining = order.amount - order.cancelled_amount
    return render(
        "<form method='post' action='{action}' class='box' id='cancel-form'>"
        "<input type='hidden' name='csrf' value='{csrf}'>"
        "<label for='amount'>Refund amount in won (empty: the whole remaining {remaining})"
        "</label><p><input id='amount' name='amount' inputmode='numeric' pattern='[0-9,]*' "
        "maxlength='15' placeholder='{placeholder}'> "
        "<button type='submit' class='danger' id='cancel'>Refund…</button></p>"
        "<p class='muted'>You will be asked to confirm before anything is sent to Payletter."
        "</p></form>",
        action=f"{order_href(order.order_no)}/cancel", csrf=csrf, remaining=won(remaining),
        placeholder=str(remaining))


def confirm_form(order: Order, amount: int, csrf: str, key: str) -> Markup:
    full = amount == order.amount - order.cancelled_amount
    return render(
        "<div class='box'><p>Order {link}: {product} · paid {paid} by {pgcode} · "
        "already refunded {refunded}.</p>"
        "<p>Refund <b id='confirm-amount'>{amount}</b>{whole} to the buyer through Payletter? "
        "This can't be undone.</p>"
        "<form method='post' action='{action}'>"
        "<input type='hidden' name='csrf' value='{csrf}'>"
        "<input type='hidden' name='amount' value='{value}'>"
        "<input type='hidden' name='key' value='{key}'>"
        "<input type='hidden' name='confirm' value='yes'>"
        "<div class='actions'><button type='submit' class='danger' id='confirm'>"
        "Yes, refund {amount}</button>"
        "<a class='button plain' href='{back}' id='back'>No, back to the order</a></div>"
        "</form></div>",
        link=order_link(order.order_no), product=order.product_name, paid=won(order.amount),
        pgcode=order.pgcode, refunded=won(order.cancelled_amount), amount=won(amount),
        whole=Markup(" (all that remains)") if full else Markup(""),
        action=f"{order_href(order.order_no)}/cancel", csrf=csrf, value=str(amount), key=key,
        back=order_href(order.order_no))


# -- daily totals -------------------------------------------------------------------------

PALETTE = ("#0969da", "#1a7f37", "#bf3989", "#bc4c00", "#8250df", "#1b7c83", "#9a6700",
           "#cf222e", "#57606a", "#0550ae", "#116329", "#953800")


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2, 2.5 or 5 × 10^k that is at least `value` (an axis maximum)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return int(step * magnitude)
    return 10 * magnitude  # pragma: no cover


def daily_chart(days: Sequence[date], rows: Sequence[tuple[str, str, int, int]],
                measure: str) -> Markup:
    """Stacked bars, one per Korea day, a segment per method, drawn as inline SVG."""
    methods = sorted({pgcode for _, pgcode, _, _ in rows})
    color = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(methods)}
    by_day: dict[str, list[tuple[str, int, int]]] = {}
    for day_text, pgcode, count, amount in rows:
        by_day.setdefault(day_text, []).append((pgcode, count, amount))

    def size(count: int, amount: int) -> int:
        return count if measure == "count" else amount

    top = _nice_ceiling(max((sum(size(c, a) for _, c, a in by_day.get(d.isoformat(), []))
                             for d in days), default=0))
    width, height, left, right, above, below = 760, 260, 86, 10, 12, 34
    plot_w, plot_h = width - left - right, height - above - below
    slot = plot_w / max(len(days), 1)
    bar_w = slot * 0.68
    parts: list[Markup] = []
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        y = above + plot_h * (1 - fraction)
        label = f"{top * fraction:,.0f}" + ("" if measure == "count" else " won")
        parts.append(render(
            "<line x1='{x1}' x2='{x2}' y1='{y}' y2='{y}' stroke='#d0d7de'/>"
            "<text x='{tx}' y='{ty}' text-anchor='end'>{label}</text>",
            x1=left, x2=width - right, y=f"{y:.1f}", tx=left - 6, ty=f"{y + 4:.1f}",
            label=label))
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_w) / 2
        base = float(above + plot_h)
        for pgcode, count, amount in sorted(by_day.get(day.isoformat(), [])):
            h = plot_h * size(count, amount) / top
            base -= h
            parts.append(render(
                "<rect class='bar' data-day='{day}' data-pgcode='{pgcode}' data-count='{count}'"
                " data-amount='{amount}' x='{x}' y='{y}' width='{w}' height='{h}' "
                "fill='{fill}'><title>{day} {pgcode}: {count} paid, {won}</title></rect>",
                day=day.isoformat(), pgcode=pgcode, count=count, amount=amount,
                x=f"{x:.1f}", y=f"{base:.1f}", w=f"{bar_w:.1f}", h=f"{h:.1f}",
                fill=color[pgcode], won=won(amount)))
        parts.append(render("<text x='{x}' y='{y}' text-anchor='middle'>{label}</text>",
                            x=f"{x + bar_w / 2:.1f}", y=height - below + 16,
                            label=day.strftime("%m-%d")))
    legend = join(render("<span><span class='swatch' style='background:{c}'></span>{m}</span>",
                         c=color[m], m=m) for m in methods)
    return render(
        "<svg id='chart' xmlns='http://www.w3.org/2000/svg' width='{w}' height='{h}' "
        "viewBox='0 0 {w} {h}' role='img' aria-label='{label}'>{parts}</svg>"
        "<div class='legend'>{legend}</div>",
        w=width, h=height, label=f"paid orders per Korea day and method, by {measure}",
        parts=join(parts), legend=legend)


def daily_table(days: Sequence[date], rows: Sequence[tuple[str, str, int, int]]) -> Markup:
    methods = sorted({pgcode for _, pgcode, _, _ in rows})
    cells = {(day, pgcode): (count, amount) for day, pgcode, count, amount in rows}
    head = join(render("<th class='num'>{m}</th>", m=m) for m in methods)

    def cell(day: str, method: str) -> Markup:
        count, amount = cells.get((day, method), (0, 0))
        return render("<td class='num'>{v}</td>", v=render("{c} · {a}", c=count, a=won(amount))
                      if count else DASH)

    def total(day: str) -> Markup:
        count = sum(cells.get((day, m), (0, 0))[0] for m in methods)
        amount = sum(cells.get((day, m), (0, 0))[1] for m in methods)
        return render("<b>{c} · {a}</b>", c=count, a=won(amount)) if count else DASH

    body = join(render("<tr><td>{day}</td>{cells}<td class='num'>{total}</td></tr>",
                       day=d.isoformat(), cells=join(cell(d.isoformat(), m) for m in methods),
                       total=total(d.isoformat()))
                for d in reversed(days))
    return render("<table id='daily'><thead><tr><th>Korea day</th>{head}<th class='num'>all"
                  "</th></tr></thead><tbody>{body}</tbody></table>", head=head, body=body)
