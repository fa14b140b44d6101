#!/usr/bin/env python3
"""The original TaskExecutor as a creatord `exec` step (see pipelines.toml).

creatord sends {"creator": {...}, "max_workers": N} on stdin and reads one JSON value from
stdout. The adapter:
- maps the creator to the original's id: its `external_id`, which `creatord import` kept (a
  creator without one was not imported from the original and cannot be run by it);
- sends everything the executor prints to stderr (the step's log), so stdout carries only the
  result;
- reports progress (`PROGRESS` lines) and hands the executor's images to creatord, which stores
  them as the creator's images.
Supabase's URL and key come from the environment (pipelines.toml passes them from creatord's).
"""
import contextlib
import json
import os
import sys

sys.dont_write_bytecode = True  # runs from the source tree: leave no __pycache__ there
from task_executor import TaskExecutor  # noqa: E402  (the original: from tasks.executor import TaskExecutor)


def main():
    job = json.load(sys.stdin)
    creator = job["creator"]
    original_id = creator.get("external_id")
    if not original_id:
        print(f"creator {creator['id']} has no external_id: it was not imported from the original service",
              file=sys.stderr)
        return 2
    print("PROGRESS 0.1 running the original executor", file=sys.stderr, flush=True)
    with contextlib.redirect_stdout(sys.stderr):
        result = TaskExecutor().execute_all_steps(original_id, int(job.get("max_workers") or 4),
                                                  os.environ.get("SUPABASE_URL", ""),
                                                  os.environ.get("SUPABASE_API_KEY", ""))
    print("PROGRESS 0.9 storing its images", file=sys.stderr, flush=True)
    json.dump({"original_id": result["creator_id"], "steps": result["steps"],
               "images": [{"base64": b} for b in result["images"]]}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
