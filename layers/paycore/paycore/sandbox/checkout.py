"""The sandbox checkout page: what the order's QR code points to, with Pay and Decline.

Plain HTML with two forms posting back to the same URL, usable in any browser on the local stack.
Every value shown is escaped.
"""

from __future__ import annotations

from html import escape

from paycore import money
from paycore.data.sandbox import SandboxPayment

_MESSAGES = {
    "paid": "Payment accepted. The merchant is notified by webhook.",
    "declined": "The payment was declined.",
    "expired": "This payment has expired and can no longer be paid.",
    "already_paid": "This payment was already made.",
    "already_failed": "This payment was declined earlier.",
    "already_closed": "The merchant closed this payment.",
}


def render(payment: SandboxPayment, result: str | None = None) -> str:
    amount = money.format_minor(int(payment.amount), payment.currency)
    message = f'<p class="result">{escape(_MESSAGES.get(result, result))}</p>' if result else ""
    actions = ""
    if payment.status == "pending":
        actions = (
            '<form method="post"><input type="hidden" name="action" value="pay">'
            '<button type="submit" id="pay">Pay</button></form>'
            '<form method="post"><input type="hidden" name="action" value="decline">'
            '<button type="submit" id="decline">Decline</button></form>'
        )
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Sandbox checkout</title>"
        "<style>body{font-family:sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem}"
        ".amount{font-size:2rem;margin:.5rem 0}form{display:inline-block;margin-right:1rem}"
        "button{font-size:1.1rem;padding:.5rem 1.5rem}</style></head><body>"
        "<h1>Sandbox checkout</h1>"
        f'<p class="subject">{escape(payment.subject)}</p>'
        f'<p class="amount">{escape(amount)}</p>'
        f"<p>Payment <code>{escape(payment.payment_id)}</code> · status "
        f'<strong class="status">{escape(payment.status)}</strong></p>'
        f"{message}{actions}"
        "</body></html>\n"
    )
