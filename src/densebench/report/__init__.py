"""`densebench report`: tables, ranks, statistics, plots and an HTML leaderboard from run outputs and
published results. `load` reads results, `analysis` and `stats` compute, `tables` and `plots` present,
`render` and `html` write the files; `cli` is the command."""
