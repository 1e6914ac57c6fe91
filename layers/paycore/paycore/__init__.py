"""paycore: the shared domain package of serverless-payments.

Handlers in ``functions/`` parse input, call one function of this package and shape the
response. Nothing here imports from ``functions/``; only ``paycore.data`` and
``paycore.aws`` touch boto3 or PynamoDB.
"""

__version__ = "0.1.0"
