"""Pydantic models at the API edge: the request and response bodies of the contract.

The OpenAPI document is generated from these, so they are the contract in code.
"""
