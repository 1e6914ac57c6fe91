"""Scheduled jobs: the expiry sweeper (``sweeper``) and the daily ops report (``report``).

docs/scheduled-jobs.md describes their schedules, failure handling and cost model.
"""
