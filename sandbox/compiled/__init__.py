"""Machinery shared by the compiled languages (sandbox/languages/java.py, cpp.py): the run of one
sample in a fresh sandbox (run.py, with the in-sandbox runner sandbox/worker/runner.py), the warm
javac (javac_server.py), the Java harness class (java_harness.py) and a small C-like source scanner
(clike.py)."""
