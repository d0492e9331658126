"""Quality filters for instruction data: one module per family, each an operator of kind `filter`.

- `language`            language ID per role, keep-lists, prompt/response mismatch (`language.py`,
                        fast deterministic scorer over langdetect's profiles in `_langid.py`)
- `instruction_defects` known defects of self-instruct data (`defects.py`)
- `quality_heuristics`  lengths, Gopher repetition, symbol/URL ratios, stop words (`heuristics.py`)
- `pii`                 e-mails, phones, IPs, cards (Luhn), IBANs, API keys: flag/redact/drop (`pii.py`)

Every filter writes its score/flag columns first and then decides, so `annotate_only: true`
keeps all rows and thresholds can be tuned from the columns. Reason codes: docs/filters.md.
"""
