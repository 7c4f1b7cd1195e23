"""Tables, figures, the scorecard and the report page, from the runs' metrics."""
