"""Identity: registration, login, sessions, tokens, keys and the authorizer's decision.

docs/identity.md describes the flows, the data model and the security decisions.
"""
