"""The sandbox provider: a real simulated payment provider, run inside this stack.

It keeps its own payments in its own table (``paycore.data.sandbox``), serves a checkout page with
Pay and Decline (``checkout``), and delivers webhooks signed like Stripe's to
``/callbacks/sandbox`` with retries on a back-off schedule (``webhooks``). Its behaviour (decline
rate, delivery delay, duplicate and out-of-order deliveries, late payments) is configurable
(``service.Behaviour``). The order logic reaches it only through its adapter,
``paycore.providers.sandbox``, exactly as it reaches Stripe or Alipay.
"""
