#!/usr/bin/env python3
"""An exec step: JSON on stdin, JSON on stdout, progress on stderr.

Input: {"creator": {...}, "style": "..."}; output: {"prompt": "...", "size": "..."}.
"""
import json
import sys
import time

job = json.load(sys.stdin)
creator = job["creator"]
print("PROGRESS 0.2 reading the creator", file=sys.stderr, flush=True)
tags = ", ".join(creator.get("tags") or ["abstract"])
time.sleep(0.1)  # stands in for real work
print("PROGRESS 0.8 writing the prompt", file=sys.stderr, flush=True)
prompt = f"A {job.get('style', 'vivid')} portrait of {creator['name']}, themes: {tags}"
json.dump({"prompt": prompt, "size": "256x256"}, sys.stdout)
