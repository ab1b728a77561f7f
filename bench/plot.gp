# SPDX-License-Identifier: MIT
#
# bench/plot.gp - init + destroy cost by slot count, one line per policy.
#
#   gnuplot -e "datafile='init-cost.dat'; outfile='init-cost.png'; \
#               term='pngcairo'" bench/plot.gp
#
# datafile is what bench/report.awk writes with -v dat=...: slots, EAGER ns,
# DUAL ns, EAGER/DUAL, DUAL+share ns; "?" marks a missing value.  term is
# pngcairo where gnuplot has it, else png (libgd), as bench/run decides.

if (!exists("datafile")) datafile = 'init-cost.dat'
if (!exists("outfile")) outfile = 'init-cost.png'
if (!exists("term")) term = 'png'

if (term eq 'pngcairo') {
	set terminal pngcairo size 960,640 enhanced font 'sans,11'
} else {
	set terminal png size 960,640 enhanced
}
set output outfile

set datafile missing '?'
set title 'libpcpu: cost of pcpu\_counter\_init + pcpu\_counter\_destroy'
set xlabel 'per-CPU slots (simulated CPUs, pcpu\_set\_nr\_slots)'
set ylabel 'ns per counter (median, wall clock)'
set logscale x 2
set logscale y 10
set format x '%g'
set xtics 2
set format y '10^{%L}'
set xrange [0.7:5900]
set grid xtics ytics mytics
set key top left box opaque

plot datafile using 1:2 with linespoints lw 2 pt 7 title 'EAGER (per-CPU at init)', \
     datafile using 1:5 with linespoints lw 2 pt 6 dt 2 title 'DUAL + pcpu\_counter\_share', \
     datafile using 1:3 with linespoints lw 2 pt 5 title 'DUAL (owner-private until shared)'
