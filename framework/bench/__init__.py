"""The benchmarks: each module's ``main(argv)`` is one ``scripts/bench_*.py`` command (docs/benchmarks.md says
what each measures and how to run it). Nothing here is imported by training, testing or inference."""
