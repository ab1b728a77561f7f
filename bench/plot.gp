# SPDX-License-Identifier: MIT
#
# bench/plot.gp - the three plots of bench/run.
#
#   gnuplot -e "what='init'; datafile='init-cost.dat'; \
#               outfile='init-cost.png'; term='pngcairo'" bench/plot.gp
#   gnuplot -e "what='memory'; datafile='memory.dat'; \
#               outfile='memory.png'; term='pngcairo'" bench/plot.gp
#   gnuplot -e "what='cache'; datafile='cache-cost.dat'; \
#               outfile='cache-cost.png'; term='pngcairo'" bench/plot.gp
#
# what='init' (the default): init + destroy cost by slot count, one line
# per policy.  datafile is what bench/report.awk writes with -v dat=...:
# slots, EAGER ns, LAZY ns, DUAL ns, DUAL+share ns, EAGER/LAZY, EAGER/DUAL.
#
# what='memory': resident memory of many counters touched by one CPU, by
# slot count.  datafile is what bench/pcpu-mem writes with --dat: slots,
# EAGER MiB, LAZY MiB, DUAL+share MiB, EAGER's slots alone (N*slots*8 B).
#
# what='cache': object lifecycle cost by slot count, EAGER and CACHED.
# datafile is what bench/report.awk writes with -v cdat=...: slots, mm
# EAGER, mm CACHED (1 thread), mm EAGER, mm CACHED (2 threads, wall ns per
# lifecycle over both), tc EAGER, tc CACHED (ns).
#
# "?" marks a missing value.  term is pngcairo where gnuplot has it, else
# png (libgd), as bench/run decides.

if (!exists("what")) what = 'init'
if (!exists("datafile")) datafile = (what eq 'memory') ? 'memory.dat' : (what eq 'cache') ? 'cache-cost.dat' : 'init-cost.dat'
if (!exists("outfile")) outfile = (what eq 'memory') ? 'memory.png' : (what eq 'cache') ? 'cache-cost.png' : 'init-cost.png'
if (!exists("term")) term = 'png'

if (term eq 'pngcairo') {
	set terminal pngcairo size 960,640 enhanced font 'sans,11'
} else {
	set terminal png size 960,640 enhanced
}
set output outfile

set datafile missing '?'
set logscale x 2
set logscale y 10
set format x '%g'
set grid xtics ytics mytics
set key top left box opaque

if (what eq 'memory') {
	set title 'libpcpu: resident memory of 20000 counters, each touched once by CPU 0'
	set xlabel 'per-CPU slots (simulated CPUs, pcpu\_set\_nr\_slots)'
	set ylabel 'MiB resident (statm growth, fresh process per point)'
	set xrange [0.7:5900]
	set xtics (1, 4, 16, 64, 256, 1024, 4096)
	set format y '%g'
	set arrow from 0.7,16 to 5900,16 nohead dt 3 lw 1.5 lc rgb 'gray40'
	set label 'target for LAZY at 4096 slots: 16 MiB' at 1,20 textcolor rgb 'gray40'
	plot datafile using 1:2 with linespoints lw 2 pt 7 title 'EAGER (every slot zeroed at init)', \
	     datafile using 1:5 with lines lw 1 dt 2 lc rgb 'gray50' title 'EAGER slots alone: N x slots x 8 B', \
	     datafile using 1:3 with linespoints lw 2 pt 5 title 'LAZY (slots written on first touch)', \
	     datafile using 1:4 with linespoints lw 2 pt 6 dt 2 title 'DUAL + pcpu\_counter\_share'
} else { if (what eq 'cache') {
	set key below maxrows 3 box
	set title 'libpcpu: object lifecycle, EAGER (alloc per-CPU memory each time) vs CACHED (pcpu\_cache)'
	set xlabel 'per-CPU slots (simulated CPUs, pcpu\_set\_nr\_slots)'
	set ylabel 'ns per lifecycle (median, wall clock)'
	set xrange [1.5:5500]
	set xtics (2, 8, 32, 64, 192, 1024, 4096)
	set format y '10^{%L}'
	plot datafile using 1:2 with linespoints lw 2 pt 7 lc rgb 'dark-red' title 'mm-like EAGER, 1 thread', \
	     datafile using 1:4 with linespoints lw 1 pt 6 dt 2 lc rgb 'dark-red' title 'mm-like EAGER, 2 threads (wall ns / lifecycle over both)', \
	     datafile using 1:3 with linespoints lw 2 pt 5 lc rgb 'blue' title 'mm-like CACHED, 1 thread', \
	     datafile using 1:5 with linespoints lw 1 pt 4 dt 2 lc rgb 'blue' title 'mm-like CACHED, 2 threads (wall ns / lifecycle over both)', \
	     datafile using 1:6 with linespoints lw 2 pt 9 lc rgb 'dark-orange' title 'tc-like churn EAGER, 1 thread', \
	     datafile using 1:7 with linespoints lw 2 pt 11 lc rgb 'dark-cyan' title 'tc-like churn CACHED, 1 thread'
} else {
	set title 'libpcpu: cost of pcpu\_counter\_init + pcpu\_counter\_destroy'
	set xlabel 'per-CPU slots (simulated CPUs, pcpu\_set\_nr\_slots)'
	set ylabel 'ns per counter (median, wall clock)'
	set xtics 2
	set format y '10^{%L}'
	set xrange [0.7:5900]
	plot datafile using 1:2 with linespoints lw 2 pt 7 title 'EAGER (every slot zeroed at init)', \
	     datafile using 1:3 with linespoints lw 2 pt 9 title 'LAZY (slots written on first touch)', \
	     datafile using 1:5 with linespoints lw 2 pt 6 dt 2 title 'DUAL + pcpu\_counter\_share', \
	     datafile using 1:4 with linespoints lw 2 pt 5 title 'DUAL (owner-private until shared)'
} }
