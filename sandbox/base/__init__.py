"""The foundation every package stands on, apart from the judge: the typed records (`records`: Problem,
Verdict, Status), their field-by-field validation (`schema`), the resumable record store (`store`:
append-only JSONL, quarantine, atomic state files) and errors that name file, record and field
(`errors`). Standard library only; it imports nothing else of the project -- not the judge, which uses
it like every other package (tests/test_architecture.py checks both).

Which languages exist is the judge's knowledge (sandbox/languages/): a record's `language` is checked
against them where problems are read (`sandbox.registry.problem_from_record`) and judged."""
