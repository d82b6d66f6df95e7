# Throughput against concurrency, from bench/run's plot data (one column per
# server and case, one row per concurrency; "-" where not measured).
#   gnuplot -e "datafile='plot.dat'; outfile='sweep.png'; subtitle='...'" bench/plot.gp
# bench/report.awk writes the data and, beside it (datafile.gp), ncols (the
# columns of a row, the first being the concurrency) and nmandate (how many
# of the series after it are Mandate's: drawn thick; the peers thin, the
# last, the ceiling, dashed). libgd's png terminal: a fifth the size of
# pngcairo's antialiased picture.
if (!exists("subtitle")) subtitle = ""
load datafile.".gp"
dtype(i) = i <= 1 + nmandate ? 1 : (i < ncols ? 2 : 3)
set terminal png size 900,560 font "DejaVuSans,9"
set output outfile
set datafile missing "-"
set title "Requests/s against concurrent connections (log scales)\n".subtitle
set xlabel "connections (wrk -c)"
set ylabel "requests/s"
set logscale xy
set format y "%.0f"
set xtics (1, 8, 32, 128)
set xrange [0.8:160]
set grid ytics xtics
set key outside right center vertical samplen 2 spacing 1.1
plot for [i=2:ncols] datafile using 1:i with linespoints lw (dtype(i) == 1 ? 3 : 1) \
    pt (i % 7 + 1) ps 1.2 dt dtype(i) title columnheader(i)
