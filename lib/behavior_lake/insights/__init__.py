"""Insights for decision makers: one set of panel definitions (SQL over the gold and ops
tables, a chart, a plain-language takeaway) rendered two ways: a self-contained static
site (`build_report`, inline SVG, no server) and an AI/BI dashboard for Databricks."""
