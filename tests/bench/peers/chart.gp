# make bench-peers: the chart, grouped bars per scenario (one bar per tool),
# CPU time above and peak memory below, both on log scales.
#   gnuplot -e "datafile='D'; output='OUT.svg'; tools=N; cpumax=MS; memmax=MIB" chart.gp
# The data file (run.py writes it): a header line of tool names, then two
# blocks (CPU in ms, peak memory in MiB), one line per scenario; NaN = n/a.
set terminal svg size 1150,760 dynamic enhanced font "sans,13" background "white"
set output output
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.9 border -1
set boxwidth 0.9
set logscale y
set grid ytics mytics lc "#dddddd"
set key outside top center horizontal noenhanced
set xtics noenhanced nomirror scale 0
set ytics nomirror
# one colour per tool, azbatch's two in blue
array colour[5] = ["#1f4e9c", "#6f9be0", "#d9822b", "#5b9e44", "#8e5aa8"]

set multiplot layout 2,1 \
  title "azbatch and its peers against one local emulator: medians, lower is better; no bar: n/a (see the table)"
set ylabel "CPU time (log)"
set yrange [1:cpumax * 1.5]
set ytics ("1 ms" 1, "10 ms" 10, "100 ms" 100, "1 s" 1000, "10 s" 10000, "100 s" 100000)
plot for [i=2:tools+1] datafile index 0 using i:xtic(1) title columnheader(i) lc rgb colour[i-1]
set ylabel "peak memory (MiB, log)"
set yrange [5:memmax * 1.5]
set ytics (5, 10, 20, 50, 100, 200, 500)
unset key
plot for [i=2:tools+1] datafile index 1 using i:xtic(1) notitle lc rgb colour[i-1]
unset multiplot
