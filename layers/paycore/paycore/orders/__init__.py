"""Orders: creation, reads, cancel, refunds and provider events, over ``paycore.data.orders``.

``service`` holds the API operations, ``callbacks`` applies verified provider events, and
``states`` the state machine both of them follow.
"""
