"""The processor runtime: exactly-once read-process-write on either log (see :mod:`.runner`)."""

from streams.runtime.metrics import RunCounts, RuntimeMetrics
from streams.runtime.runner import InputPlan, Runner, RunOptions, plan_inputs, run_processor

__all__ = ["InputPlan", "RunCounts", "RunOptions", "Runner", "RuntimeMetrics", "plan_inputs", "run_processor"]
