"""The prospectus: what a fleet serving one or several measured models costs, in the reader's currency, hour
by hour over a day and year by year, against revenue and gross margin, with and without the optimization.

money (dated exchange rates) · price_modes (on-demand, reserved, spot, owned) · load_profile (the daily
curve and the two fleet policies) · served_runs (the priced run folders read) · spec (the params file) ·
forecast (the figures, as one JSON-able dict) · workbook (xlsx and CSVs) · figures (the notebook's charts
and tables) · command (`scaleproof prospectus`).
"""
