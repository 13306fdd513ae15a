"""Calls to OpenAI-compatible endpoints (judges, data synthesis): rate limits, retries, usage and cost, budgets.

Below data and eval so that both `tunelab data synth` (data layer) and judge tasks (eval layer) use one client.
"""
