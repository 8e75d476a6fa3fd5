"""One module per report; each function's docstring is the figure's definition, as the report page shows it."""
