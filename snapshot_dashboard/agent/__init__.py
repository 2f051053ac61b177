"""The compute-side agent: quiesce and pause with a watchdog.

Runs on every compute node next to nova-compute. No Django or Horizon.
"""
