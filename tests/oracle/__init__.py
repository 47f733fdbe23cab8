"""The whole-system oracle (issue 16): random changes, runs, failures and kills applied to a
real project; after every completed run each published table must equal a clean build.

Modules, one job each:

- ``project``: the project under test (its code as a small settings model, rendered to
  files) and its data files; ``pg``: its two PostgreSQL tables;
- ``ops``: the operations, as plain JSON-able dicts, how to pick a random one and how
  to apply one;
- ``compare``: reading what an environment publishes, the clean build, the diff;
- ``machine``: the driver (apply, check the rules after each operation, log);
  ``shrink``: replaying a sequence, and shrinking one that breaks a rule;
  ``killpoint``: the CLI that kill -9s itself at a chosen point of a run;
- ``run_long``: the long form (``python tests/oracle/run_long.py --ops 2000 --seed 1``);
- ``regressions``: operation sequences that found bugs, replayed by ``test_oracle`` (the
  CI short form).
"""
