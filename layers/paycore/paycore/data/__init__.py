"""Data access: the only modules that touch PynamoDB or boto3's DynamoDB API."""
