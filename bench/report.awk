# SPDX-License-Identifier: MIT
#
# bench/report.awk - turn pcpu-bench's JSON (--benchmark_out_format=json)
# into the plain-text tables bench/run prints.
#
#   awk -v dat=init-cost.dat -v mem=memory.dat -v cdat=cache-cost.dat \
#       [-v quick=1] -f bench/report.awk results.json
#
# Google Benchmark writes one key per line, so no JSON parser is needed
# (and none is assumed: POSIX awk, mawk included).  Per benchmark it uses
# the "median" aggregate when there were repetitions, else the mean of the
# iteration runs.  Times are wall-clock ns per operation (the benchmarks
# UseRealTime()); for two threads that is wall time over both threads'
# operations, the inverse of their combined throughput.
#
# If dat is set, the init-cost table is also written there for
# bench/plot.gp: slots, EAGER ns, LAZY ns, DUAL ns, DUAL+share ns,
# EAGER/LAZY, EAGER/DUAL ("?" where missing).  If mem is set, it is the
# table bench/pcpu-mem wrote with --dat, read for the memory target.  If
# cdat is set, the object-lifecycle table is written there: slots, mm
# EAGER ns, mm CACHED ns (1 thread), mm EAGER ns, mm CACHED ns (2 threads,
# wall ns per lifecycle over both), tc EAGER ns, tc CACHED ns.
#
# Last come the issue's targets, each PASS or MISS (by how much), with a
# warning where a benchmark it uses spread more than 10% between
# repetitions.  A MISS does not change the exit status: it is a finding,
# not a failure.  Exit status 1 if any benchmark reported an error; a
# body that cannot run here reports an error starting with "skipped:",
# which is listed but is not one.

BEGIN {
	unit["ns"] = 1; unit["us"] = 1e3; unit["ms"] = 1e6; unit["s"] = 1e9
	inb = 0; inrec = 0; nerr = 0; nskip = 0; reps = 1
	ncv = 0; noisy = 0; maxcv = 0; maxcvk = ""
}

function jkey(line, k) {
	k = line
	sub(/^[ \t]*"/, "", k)
	sub(/".*$/, "", k)
	return k
}

function jval(line, v) {
	v = line
	sub(/^[ \t]*"[^"]*":[ \t]*/, "", v)
	sub(/,?[ \t\r]*$/, "", v)
	if (v ~ /^".*"$/)
		v = substr(v, 2, length(v) - 2)
	return v
}

# "shared_add/real_time/threads:2" -> "shared_add@2"
function bkey(name, threads, k) {
	k = name
	gsub(/\/real_time/, "", k)
	gsub(/\/threads:[0-9]+/, "", k)
	return k "@" threads
}

function store(k, t, u) {
	k = ("run_name" in rec) ? rec["run_name"] : rec["name"]
	k = bkey(k, ("threads" in rec) ? rec["threads"] + 0 : 1)
	seen[k] = 1
	if (rec["error_occurred"] == "true") {
		if (rec["error_message"] ~ /^skipped:/) {
			if (!(k in skip)) {
				skip[k] = rec["error_message"]
				skipkeys[++nskip] = k
			}
			return
		}
		if (!(k in err)) {
			err[k] = rec["error_message"]
			errkeys[++nerr] = k
		}
		return
	}
	if (rec["run_type"] != "aggregate" && ("shared_line_writes_per_M" in rec)) {
		slw[k] = rec["shared_line_writes_per_M"] + 0
		pubm[k] = rec["publications_per_M"] + 0
	}
	# The failing constructor's counters, per repetition: keep the worst.
	if (rec["run_type"] != "aggregate" && ("alloc_success_ratio" in rec)) {
		if (!(k in asr) || rec["alloc_success_ratio"] + 0 < asr[k])
			asr[k] = rec["alloc_success_ratio"] + 0
		if (!(k in cps) || rec["ctor_per_success"] + 0 > cps[k])
			cps[k] = rec["ctor_per_success"] + 0
	}
	# The cache bodies' user counters, per repetition: keep the worst.
	if (rec["run_type"] != "aggregate" && ("ctor_per_alloc" in rec)) {
		if (!(k in cpa) || rec["ctor_per_alloc"] + 0 > cpa[k])
			cpa[k] = rec["ctor_per_alloc"] + 0
		if (!(k in lockless) || rec["lockless_frac"] + 0 < lockless[k])
			lockless[k] = rec["lockless_frac"] + 0
	}
	u = (rec["time_unit"] in unit) ? unit[rec["time_unit"]] : 1
	t = rec["real_time"] * u
	if (rec["run_type"] == "aggregate") {
		if (rec["aggregate_name"] == "median") {
			med[k] = t
			medcpu[k] = rec["cpu_time"] * u
		}
		# The coefficient of variation is a fraction, not a time.
		if (rec["aggregate_name"] == "cv") {
			cv[k] = rec["real_time"] + 0
			ncv++
			if (rec["real_time"] + 0 > 0.10)
				noisy++
			if (rec["real_time"] + 0 > maxcv) {
				maxcv = rec["real_time"] + 0
				maxcvk = k
			}
		}
		return
	}
	sum[k] += t
	sumcpu[k] += rec["cpu_time"] * u
	cnt[k]++
	if (cnt[k] > reps)
		reps = cnt[k]
}

# The time of benchmark k in ns, or "" if it did not run or failed.
function get(k) {
	if ((k in err) || (k in skip))
		return ""
	if (k in med)
		return med[k]
	if (k in cnt)
		return sum[k] / cnt[k]
	return ""
}

# CPU time over wall time of benchmark k: the threads that really ran at
# once (the CPU time is summed over the threads).
function par(k) {
	if (k in med)
		return med[k] > 0 ? medcpu[k] / med[k] : ""
	if (k in cnt)
		return sum[k] > 0 ? sumcpu[k] / sum[k] : ""
	return ""
}

# A time for a table cell.
function cell(k, w, t) {
	t = get(k)
	if (t == "")
		return sprintf("%" w "s", (k in err) ? "ERROR" : \
		    (k in skip) ? "skipped" : "-")
	return sprintf("%" w "s", num(t))
}

# Three significant figures or so, never exponent notation.
function num(x) {
	if (x >= 1000)
		return sprintf("%.0f", x)
	if (x >= 100)
		return sprintf("%.1f", x)
	if (x >= 1)
		return sprintf("%.2f", x)
	return sprintf("%.3f", x)
}

function ratio(a, b, w, f) {
	f = w ? "%" w "s" : "%s"
	if (a == "" || b == "" || b <= 0)
		return sprintf(f, "-")
	return sprintf(f, num(a / b) "x")
}

/^[ \t]*"benchmarks": \[/ { inb = 1; next }

!inb && /^[ \t]*"[^"]+":/ { ctx[jkey($0)] = jval($0); next }

inb && /^[ \t]*\{[ \t\r]*$/ { split("", rec); inrec = 1; next }

inb && inrec && /^[ \t]*\},?[ \t\r]*$/ { store(); inrec = 0; next }

inb && inrec && /^[ \t]*"[^"]+":/ { rec[jkey($0)] = jval($0) }

END {
	# The slot counts the init and sum benchmarks ran with, ascending.
	ns = sortslots("^init_(share_)?destroy/(EAGER|LAZY|DUAL)/[0-9]+@1$", slots)
	nss = sortslots("^sum/(EAGER|LAZY|DUAL)/[0-9]+@1$", sslots)

	stat = reps > 1 ? "mean of " reps " repetitions" : "one repetition"
	for (k in med) {
		stat = "median of " reps " repetitions"
		break
	}
	printf "libpcpu benchmark: %s CPUs at %s MHz, %s slots by default, " \
	    "update method \"%s\"\n", ctx["num_cpus"], ctx["mhz_per_cpu"], \
	    ctx["pcpu_nr_slots"], ctx["pcpu_update_method"]
	printf "Times: wall-clock ns per operation, %s.\n", stat
	if (ncv > 0)
		printf "Spread between repetitions (coefficient of variation): " \
		    "above 10%% in %d of %d benchmarks, at most %.0f%% (%s).\n", \
		    noisy, ncv, maxcv * 100, maxcvk
	if (ctx["cpu_scaling_enabled"] == "true")
		print "Warning: CPU frequency scaling is enabled; times are noisy."

	if (ns > 0) {
		print ""
		print "Counter init + destroy (ns per counter), by slot count"
		printf "%6s %10s %10s %10s %11s %11s %11s\n", "slots", "EAGER", \
		    "LAZY", "DUAL", "DUAL+share", "EAGER/LAZY", "EAGER/DUAL"
		for (i = 1; i <= ns; i++) {
			s = slots[i]
			ke = "init_destroy/EAGER/" s "@1"
			kl = "init_destroy/LAZY/" s "@1"
			kd = "init_destroy/DUAL/" s "@1"
			ks = "init_share_destroy/DUAL/" s "@1"
			printf "%6d %10s %10s %10s %11s %11s %11s\n", s, \
			    cell(ke, 10), cell(kl, 10), cell(kd, 10), \
			    cell(ks, 11), ratio(get(ke), get(kl), 11), \
			    ratio(get(ke), get(kd), 11)
			if (dat != "")
				printf "%d %s %s %s %s %s %s\n", s, q(get(ke)), \
				    q(get(kl)), q(get(kd)), q(get(ks)), \
				    q(div(get(ke), get(kl))), \
				    q(div(get(ke), get(kd))) > dat
		}
		if (dat != "")
			close(dat)
		print "LAZY: slots reserved, none written.  DUAL+share: init," \
		    " pcpu_counter_share() (the upgrade"
		print "to on-demand slots), destroy."
	}

	plain = get("plain_add@1"); bare = get("rseq_add@1")
	print ""
	print "Add cost, one thread (ns per add of 1)"
	printf "  %-11s %-40s %9s    %9s %9s\n", "", "", "", "vs plain", \
	    "vs rseq"
	row("plain add", "int64_t += 1 in memory", "plain_add@1")
	row("atomic add", "relaxed atomic_fetch_add, one word", "atomic_add@1")
	row("bare rseq", "minimal rseq add, per-CPU int64_t array", \
	    "rseq_add@1")
	row("owner add", "DUAL, unshared, by its owner", "owner_add@1")
	row("shared add", "DUAL after share, by a non-owner", \
	    "shared_add@1")
	row("eager add", "EAGER counter", "eager_add@1")
	row("lazy add", "LAZY counter", "lazy_add@1")

	a1 = get("atomic_add@1"); a2 = get("atomic_add@2")
	s1 = get("shared_add@1"); s2 = get("shared_add@2")
	if (("atomic_add@2" in seen) || ("shared_add@2" in seen)) {
		print ""
		print "Two threads pinned to two CPUs, adding to one counter at" \
		    " once (wall ns per add over both)"
		row2("atomic add", "one contended word", "atomic_add@2", a1)
		row2("shared add", "DUAL shared, per-CPU slots", \
		    "shared_add@2", s1)
		row2("bare rseq", "per-CPU words, own lines", "rseq_add@2", \
		    get("rseq_add@1"))
		if (a2 != "" && s2 != "")
			printf "  Throughput, shared add / atomic add: %s\n", \
			    num(a2 / s2) "x"
		r2 = get("rseq_add@2")
		if (a2 != "" && r2 != "")
			printf "  Bound: a bare rseq add on lines of its own " \
			    "(no counter at all) / atomic add: %s; the shared " \
			    "add reaches %.0f%% of it\n", num(a2 / r2) "x", \
			    s2 != "" ? 100 * r2 / s2 : 0
		p1 = get("private_add@1"); p2 = get("private_add@2")
		if (p1 != "" && p2 != "")
			printf "  Machine ceiling: two threads adding to words " \
			    "of their own, 2T/1T throughput %s (2x: the CPUs " \
			    "do not slow each other)\n", num(p1 / p2) "x"
		for (i = 1; i <= 2; i++) {
			k = i == 1 ? "atomic_add@2" : "shared_add@2"
			p = par(k)
			if (p != "" && p < 1.7)
				printf "  Warning: %s: CPU time / wall time " \
				    "%.2f, not 2: the threads did not run in " \
				    "parallel (another process held a CPU).\n", \
				    k, p
		}
	}

	if (nss > 0) {
		print ""
		print "Exact sum of a counter touched by 2 CPUs (ns per" \
		    " pcpu_counter_sum), by slot count"
		printf "%6s %10s %10s %10s %11s\n", "slots", "EAGER", "LAZY", \
		    "DUAL", "EAGER/LAZY"
		for (i = 1; i <= nss; i++) {
			s = sslots[i]
			ke = "sum/EAGER/" s "@1"
			kl = "sum/LAZY/" s "@1"
			kd = "sum/DUAL/" s "@1"
			printf "%6d %10s %10s %10s %11s\n", s, cell(ke, 10), \
			    cell(kl, 10), cell(kd, 10), \
			    ratio(get(ke), get(kl), 11)
		}
		print "DUAL: shared with pcpu_counter_share(), then touched by" \
		    " two non-owner threads."
	}

	cache_tables()
	metrics_table()
	scale_tables()

	# The memory table bench/pcpu-mem wrote (its own output is printed
	# by bench/run): slots, EAGER, LAZY, DUAL+share MiB.
	if (mem != "") {
		while ((getline line < mem) > 0) {
			if (line ~ /^#/)
				continue
			split(line, f, " ")
			memlazy[f[1] + 0] = f[3]
		}
		close(mem)
	}

	print ""
	printf "Targets (ratios of medians from this run"
	if (quick)
		printf "; --quick: one short repetition, indicative only"
	print ")"
	ntgt = 0
	rtarget("owner add <= 1.5x plain add", "owner_add@1", \
	    "plain_add@1", "<=", 1.5)
	rtarget("shared add, 1 thread, <= 2x bare rseq add", \
	    "shared_add@1", "rseq_add@1", "<=", 2)
	# Throughput ratio: the inverse ratio of the times.
	rtarget("2 threads: shared add throughput >= 10x atomic", \
	    "atomic_add@2", "shared_add@2", ">=", 10)
	bound("atomic_add@2", "rseq_add@2", 10)
	rtarget("LAZY init at 4096 slots <= 2x at 1 slot", \
	    "init_destroy/LAZY/4096@1", "init_destroy/LAZY/1@1", "<=", 2)
	rtarget("DUAL+share init at 4096 slots <= 2x at 1 slot", \
	    "init_share_destroy/DUAL/4096@1", "init_share_destroy/DUAL/1@1", \
	    "<=", 2)
	rtarget("init at 4096 slots: EAGER >= 50x LAZY", \
	    "init_destroy/EAGER/4096@1", "init_destroy/LAZY/4096@1", ">=", 50)
	rtarget("LAZY sum, 2 CPUs touched: 4096 slots <= 3x 2 slots", \
	    "sum/LAZY/4096@1", "sum/LAZY/2@1", "<=", 3)
	rtarget("DUAL sum, 2 CPUs touched: 4096 slots <= 3x 2 slots", \
	    "sum/DUAL/4096@1", "sum/DUAL/2@1", "<=", 3)
	target("RSS of 20000 LAZY counters at 4096 slots <= 16 MiB", \
	    (4096 in memlazy) && memlazy[4096] != "?" ? memlazy[4096] : "", \
	    "<=", 16, " MiB", "", "")
	rtarget("mm lifecycle, 192 slots, 1 thread: CACHED >= 10x EAGER", \
	    "cache_mm/EAGER/192@1", "cache_mm/CACHED/192@1", ">=", 10)
	# Throughput of 2 threads over 1: the inverse ratio of wall times
	# per lifecycle.  With CPU times (summed over the threads), twice
	# the inverse ratio: what it would be had both had their CPUs.
	c1 = "cache_mm/CACHED/192@1"; c2 = "cache_mm/CACHED/192@2"
	target("mm CACHED, 192 slots: 2-thread throughput >= 1.6x 1", \
	    div(get(c1), get(c2)), ">=", 1.6, "x", c1 " " c2, \
	    div(2 * getcpu(c1), getcpu(c2)))
	rtarget("tc churn, 64 slots, 1 thread: CACHED >= 5x EAGER", \
	    "cache_tc/EAGER/64@1", "cache_tc/CACHED/64@1", ">=", 5)
	scale_targets()
	p1 = get("private_add@1"); p2 = get("private_add@2")
	if (p1 != "" && p2 != "")
		printf "  info  %-52s %9s\n        (nothing shared: what this " \
		    "machine allows any 2-thread loop)\n", \
		    "machine ceiling: private add, 2-thread throughput / 1", \
		    num(p1 / p2) "x"
	e1 = "cache_mm/EAGER/192@1"; e2 = "cache_mm/EAGER/192@2"
	if (get(e1) != "" && get(e2) != "")
		printf "  info  %-52s %9s\n        (EAGER does not scale: " \
		    "pcpu_alloc/pcpu_free take one global lock; CPU-time " \
		    "ratio %s)\n", "mm EAGER, 192 slots: 2-thread throughput / 1", \
		    num(get(e1) / get(e2)) "x", \
		    ratio(2 * getcpu(e1), getcpu(e2), 0)
	printf "  %d of %d targets met.\n", npass, ntgt

	if (nskip > 0) {
		print ""
		print "Skipped here:"
		for (i = 1; i <= nskip; i++)
			printf "  %s: %s\n", skipkeys[i], skip[skipkeys[i]]
	}
	if (nerr > 0) {
		print ""
		print "ERRORS:"
		for (i = 1; i <= nerr; i++)
			printf "  %s: %s\n", errkeys[i], err[errkeys[i]]
		exit 1
	}
}

# Collect into arr[1..n], ascending, the slot counts (the number before
# "@") of the benchmarks whose keys match re; return n.
function sortslots(re, arr,    k, s, n, i, j, v, have) {
	n = 0
	for (k in seen) {
		if (k !~ re)
			continue
		s = k
		sub(/@1$/, "", s)
		sub(/^.*\//, "", s)
		s += 0
		if (s in have)
			continue
		have[s] = 1
		arr[++n] = s
	}
	for (i = 2; i <= n; i++) {
		v = arr[i]
		for (j = i - 1; j >= 1 && arr[j] > v; j--)
			arr[j + 1] = arr[j]
		arr[j + 1] = v
	}
	return n
}

function div(a, b) {
	return (a == "" || b == "" || b <= 0) ? "" : a / b
}

# A value for the .dat file: "?" when missing.
function q(v) {
	return v == "" ? "?" : v
}

# A target on the ratio of two benchmarks' times, a / b.
# After a throughput target against the contended atomic (a / b >= lim):
# the same ratio for the bare rseq add on lines of its own (b), the most
# any per-CPU add reaches on this machine.  When even that is below the
# target, the target cannot be met here, whatever the counter does.
function bound(a, b, lim,    v) {
	v = div(get(a), get(b))
	if (v == "")
		return
	printf "        bound: a bare rseq add, 2 threads on lines of " \
	    "their own, reaches %s%s\n", num(v) "x", \
	    v < lim ? " (below the target: not reachable on this machine)" : ""
}

function rtarget(what, a, b, op, lim) {
	target(what, div(get(a), get(b)), op, lim, "x", a " " b, \
	    div(getcpu(a), getcpu(b)))
}

# One target line: PASS or MISS, and by how much.  Then, if a benchmark
# it rests on (keys, space-separated) spread above 10% between
# repetitions, or got less than 90% of its threads' CPU time (median CPU
# time over wall time: another process held a CPU while it was timed), a
# second line that says so, with the same ratio of median CPU times (vcpu),
# which preemption distorts less.  The verdict stays on wall time.
function target(what, v, op, lim, unit, keys, vcpu,    ok, n, i, kk, by, w, p, th) {
	ntgt++
	if (v == "") {
		printf "  N/A   %-52s (not measured here)\n", what
		return
	}
	ok = op == "<=" ? v <= lim : v >= lim
	if (ok)
		npass++
	printf "  %s  %-52s %9s", ok ? "PASS" : "MISS", what, \
	    (unit == "x" ? num(v) "x" : sprintf("%.2f", v) unit)
	if (!ok) {
		by = op == "<=" ? v / lim : lim / v
		printf "  (misses by %.0f%%)", (by - 1) * 100
	}
	printf "\n"
	w = ""
	n = split(keys, kk, " ")
	for (i = 1; i <= n; i++)
		if ((kk[i] in cv) && cv[kk[i]] > 0.10)
			w = w sprintf("%s %s %.0f%%", w == "" ? "" : ",", \
			    kk[i], cv[kk[i]] * 100)
	if (w != "")
		w = "cv" w
	p = ""
	for (i = 1; i <= n; i++) {
		th = kk[i]
		sub(/^.*@/, "", th)
		if (par(kk[i]) != "" && par(kk[i]) < 0.9 * th)
			p = p sprintf("%s %s %.2f", p == "" ? "" : ",", kk[i], \
			    par(kk[i]) / th)
	}
	if (p != "")
		w = w (w == "" ? "" : "; ") "cpu/wall" p
	if (w != "")
		printf "        noisy: %s%s\n", w, vcpu == "" ? "" : \
		    "; CPU-time ratio " num(vcpu) "x"
	if (p != "")
		printf "        (preempted while timed: run again on an idle" \
		    " machine before trusting this line)\n"
}

# The median CPU time of benchmark k in ns (summed over its threads).
function getcpu(k) {
	if ((k in err) || (k in skip))
		return ""
	if (k in med)
		return medcpu[k]
	if (k in cnt)
		return sumcpu[k] / cnt[k]
	return ""
}

function row(label, what, k,    t) {
	t = get(k)
	printf "  %-11s %-40s %9s%s", label, "(" what ")", cell(k, 9), \
	    t == "" ? "   " : " ns"
	if (t != "" && k != "plain_add@1")
		printf " %9s", ratio(t, plain, 9)
	else
		printf " %9s", ""
	if (t != "" && k != "rseq_add@1" && k != "plain_add@1" && \
	    k != "atomic_add@1")
		printf " %9s", ratio(t, bare, 9)
	printf "\n"
}

# ns per add, combined throughput, and speed-up over the one-thread run.
function row2(label, what, k, one,    t) {
	t = get(k)
	printf "  %-11s %-28s %9s%s", label, "(" what ")", cell(k, 9), \
	    t == "" ? "" : " ns"
	if (t != "" && t > 0) {
		printf " %9s M adds/s", num(1e3 / t)
		if (one != "")
			printf "  %s vs one thread", ratio(one, t, 0)
	}
	printf "\n"
}

# The object-cache tables: the mm-like lifecycle by slot count, 1 and 2
# threads, and the tc-like churn; cdat gets the plot's table.
function cache_tables(    nc, ntc, i, s, e1, c1, e2, c2, te, tc, w, m, ml, k, \
    have, all, n, v) {
	nc = sortslots("^cache_mm/(EAGER|CACHED)/[0-9]+@1$", cslots)
	ntc = sortslots("^cache_tc/(EAGER|CACHED)/[0-9]+@1$", tslots)
	if (nc == 0 && ntc == 0)
		return
	if (nc > 0) {
		print ""
		print "Object lifecycle, mm-like (2 counters + 1 per-CPU area):" \
		    " create, 16 owner updates,"
		print "destroy (ns per lifecycle; 2 threads: wall ns per" \
		    " lifecycle over both), by slot count"
		printf "%6s %9s %9s %8s | %9s %9s | %15s\n", "", \
		    "1 thread", "", "", "2 threads", "", "2T/1T thruput"
		printf "%6s %9s %9s %8s | %9s %9s | %7s %7s\n", "slots", \
		    "EAGER", "CACHED", "ratio", "EAGER", "CACHED", "EAGER", \
		    "CACHED"
		for (i = 1; i <= nc; i++) {
			s = cslots[i]
			e1 = "cache_mm/EAGER/" s "@1"
			c1 = "cache_mm/CACHED/" s "@1"
			e2 = "cache_mm/EAGER/" s "@2"
			c2 = "cache_mm/CACHED/" s "@2"
			printf "%6d %9s %9s %8s | %9s %9s | %7s %7s\n", s, \
			    cell(e1, 9), cell(c1, 9), \
			    ratio(get(e1), get(c1), 8), cell(e2, 9), \
			    cell(c2, 9), ratio(get(e1), get(e2), 7), \
			    ratio(get(c1), get(c2), 7)
		}
		print "EAGER: malloc + pcpu_counter_init_many(2, EAGER) +" \
		    " pcpu_alloc, destroy_many + pcpu_free + free."
		print "CACHED: pcpu_cache_alloc, 2 x pcpu_counter_reset (new" \
		    " owner), ..., 2 x reset, cid slot"
		print "cleared, pcpu_cache_free.  Both write this CPU's cid" \
		    " slot once.  ratio: EAGER / CACHED."
		print "CACHED objects are 64-byte aligned (the kernel's" \
		    " mm_struct cache is SLAB_HWCACHE_ALIGN):"
		print "two CPUs' objects never share a cache line."
		print "2T/1T: throughput of 2 pinned threads over 1 (2x is" \
		    " perfect scaling)."
		for (i = 1; i <= nc; i++) {
			s = cslots[i]
			w = ""
			for (k = 1; k <= 2; k++) {
				m = "cache_mm/" (k == 1 ? "EAGER" : "CACHED") \
				    "/" s "@2"
				if (par(m) != "" && par(m) < 1.8)
					w = w sprintf(" %s %.2f", m, par(m) / 2)
			}
			if (w != "")
				printf "Warning: CPU time / wall time per thread" \
				    " below 0.9 (preempted):%s\n", w
		}
	}
	if (ntc > 0) {
		print ""
		print "Insert/remove churn, tc-like (3 per-CPU areas), ring of" \
		    " 16 live objects, 1 thread"
		print "(ns per remove + insert), by slot count"
		printf "%6s %9s %9s %8s\n", "slots", "EAGER", "CACHED", "ratio"
		for (i = 1; i <= ntc; i++) {
			s = tslots[i]
			te = "cache_tc/EAGER/" s "@1"
			tc = "cache_tc/CACHED/" s "@1"
			printf "%6d %9s %9s %8s\n", s, cell(te, 9), cell(tc, 9), \
			    ratio(get(te), get(tc), 8)
		}
		print "EAGER: malloc + 3 x pcpu_alloc, 3 x pcpu_free + free." \
		    "  CACHED: pcpu_cache_alloc,"
		print "the touched stats slot cleared, pcpu_cache_free.  Both" \
		    " update this CPU's stats once."
	}
	m = ""; ml = ""
	for (k in cpa)
		if (m == "" || cpa[k] > m)
			m = cpa[k]
	for (k in lockless)
		if (ml == "" || lockless[k] < ml)
			ml = lockless[k]
	if (m != "")
		printf "CACHED: constructor calls per allocation at most %.2g" \
		    " (every object of a slab, once);\nallocations that took" \
		    " a lock (array refills): at most %.3g per million.\n", \
		    m, (1 - ml) * 1e6
	k = "cache_ctorfail/CACHED@1"
	if (k in asr)
		printf "A constructor that fails one call in three (each " \
		    "allocation needs a new object):\nallocations that " \
		    "succeed %.3f (at least, over the repetitions), " \
		    "constructor calls per success %.3f (at most).\n", \
		    asr[k], cps[k]
	if (cdat != "") {
		# Every slot count either table has.
		for (i = 1; i <= nc; i++)
			have[cslots[i]] = 1
		for (i = 1; i <= ntc; i++)
			have[tslots[i]] = 1
		n = 0
		for (s in have)
			all[++n] = s + 0
		for (i = 2; i <= n; i++) {
			v = all[i]
			for (k = i - 1; k >= 1 && all[k] > v; k--)
				all[k + 1] = all[k]
			all[k + 1] = v
		}
		for (i = 1; i <= n; i++) {
			s = all[i]
			printf "%d %s %s %s %s %s %s\n", s, \
			    q(get("cache_mm/EAGER/" s "@1")), \
			    q(get("cache_mm/CACHED/" s "@1")), \
			    q(get("cache_mm/EAGER/" s "@2")), \
			    q(get("cache_mm/CACHED/" s "@2")), \
			    q(get("cache_tc/EAGER/" s "@1")), \
			    q(get("cache_tc/CACHED/" s "@1")) > cdat
		}
		close(cdat)
	}
}

# The metrics registry of tests/examples/metrics.c (bench/bench_metrics.c):
# ns per request, DUAL counters against the same registry on C11 atomics.
function metrics_table(    t, p, a) {
	if (!("metrics/PCPU@1" in seen) && !("metrics/ATOMIC@1" in seen))
		return
	print ""
	print "Metrics registry, tests/examples/metrics.c's request: 3 series" \
	    " updates after lock-free"
	print "lookups under liburcu-bp (ns per request; 2 threads: wall ns" \
	    " per request over both)"
	printf "  %-8s %12s %12s %14s\n", "threads", "pcpu DUAL", \
	    "C11 atomics", "atomics/pcpu"
	for (t = 1; t <= 2; t++) {
		p = "metrics/PCPU@" t
		a = "metrics/ATOMIC@" t
		if (!(p in seen) && !(a in seen))
			continue
		printf "  %-8d %12s %12s %14s\n", t, cell(p, 12), cell(a, 12), \
		    ratio(get(a), get(p), 14)
	}
	print "Each thread updates its own users' series and the shared" \
	    " status and bytes series."
}

# Two threads on unrelated objects: each non-eager operation's 2T/1T
# throughput next to the machine's ceiling (each thread adding to a word
# of its own) measured in the same run; with PCPU_BENCH_SCALING=1, every
# thread count that ran.  Then the counter, area and lifecycle rows.
function scale_tables(    n, i, j, k, op, t1, tn, c1, cn, th, nth, ops, line) {
	n = split("dual_life lazy_life/2 lazy_life/1024 cache_life " \
	    "shared_add1 shared_add255 sum read reset_reshare_touch " \
	    "area_life area_add", ops, " ")
	if (get("scale/ceiling@1") == "")
		return
	nth = 0
	for (k in seen)
		if (k ~ /^scale\/ceiling@[0-9]+$/) {
			th = k
			sub(/^.*@/, "", th)
			if (th + 0 > 1)
				ths[++nth] = th + 0
		}
	for (i = 1; i <= nth; i++)
		for (j = i + 1; j <= nth; j++)
			if (ths[j] < ths[i]) {
				th = ths[i]; ths[i] = ths[j]; ths[j] = th
			}
	print ""
	print "Unrelated objects: each thread pinned to a CPU of its own, on an " \
	    "object of its own"
	line = sprintf("%-22s %9s", "operation", "1T ns")
	for (j = 1; j <= nth; j++)
		line = line sprintf(" %9s %10s", ths[j] "T/1T", "efficiency")
	print line
	c1 = get("scale/ceiling@1")
	line = sprintf("%-22s %9s", "ceiling (private add)", num(c1))
	for (j = 1; j <= nth; j++) {
		cn = get("scale/ceiling@" ths[j])
		line = line sprintf(" %9s %10s", cn == "" ? "-" : \
		    num(c1 / cn) "x", cn == "" ? "-" : \
		    sprintf("%.0f%%", 100 * c1 / cn / ths[j]))
	}
	print line
	for (i = 1; i <= n; i++) {
		op = ops[i]
		t1 = get("scale/" op "@1")
		line = sprintf("%-22s %9s", op, t1 == "" ? "-" : num(t1))
		for (j = 1; j <= nth; j++) {
			tn = get("scale/" op "@" ths[j])
			cn = get("scale/ceiling@" ths[j])
			# Efficiency: against the ceiling's own 2T/1T.
			line = line sprintf(" %9s %10s", \
			    (t1 == "" || tn == "") ? "-" : num(t1 / tn) "x", \
			    (t1 == "" || tn == "" || cn == "") ? "-" : \
			    sprintf("%.0f%%", 100 * (t1 / tn) / (c1 / cn)))
		}
		print line
	}
	print "  (efficiency: the operation's nT/1T over the ceiling's nT/1T)"
	if (("hot/lazy_add1@2" in slw))
		printf "One hot LAZY counter, 2 threads adding 1: %.0f writes to " \
		    "lines more than one slot writes per million adds (%.0f " \
		    "publications)\n", slw["hot/lazy_add1@2"], \
		    pubm["hot/lazy_add1@2"]
	print ""
	print "Counters, areas, lifecycles (ns per operation)"
	srow("owner add, fresh counter", "dual/owner_add_fresh@1")
	srow("owner add after share + reset", \
	    "dual/owner_add_after_reset@1")
	srow("first share (init+share+add+destroy)", "dual/first_share@1")
	srow("re-share of a reset counter (+add)", "dual/reshare@1")
	srow("shared add 1, batch 2^16, 1 thread", \
	    "bytes/shared_add1_b16@1")
	srow("shared add 1500, batch 2^16, 1 thread", \
	    "bytes/shared_add1500_b16@1")
	srow("shared add 1500, batch 2^16, 2 threads", \
	    "bytes/shared_add1500_b16@2")
	srow("atomic add 1500, 2 threads, one word", \
	    "bytes/atomic_add1500@2")
	srow("area add (lazy area, touched slot)", "scale/area_add@1")
	srow("two-field area update (bytes, packets)", \
	    "area/two_field@1")
	srow("two counter adds (shared)", "area/two_counters@1")
	srow("pcpu_alloc_lazy + free, 1 slot", "area/alloc_lazy_free/1@1")
	srow("pcpu_alloc_lazy + free, 4096 slots", \
	    "area/alloc_lazy_free/4096@1")
	srow("mm life, shared before, cached, 192", \
	    "life/cached_shared_before/192@1")
	srow("mm life, eager, 192 slots", "life/eager/192@1")
	srow("tc churn, 2 threads, cached+lazy, 64", "tc/cached_lazy/64@2")
	srow("tc churn, 2 threads, cached+lazy, 4096", \
	    "tc/cached_lazy/4096@2")
	srow("tc churn, 2 threads, eager, 64", "tc/eager/64@2")
	srow("tc churn, 2 threads, eager, 4096", "tc/eager/4096@2")
}

# The targets of the scaling, counter and area work.
function scale_targets(    i, n, ops, op, t1, t2, c1, c2, v) {
	c1 = get("scale/ceiling@1"); c2 = get("scale/ceiling@2")
	n = split("dual_life lazy_life/2 lazy_life/1024 cache_life " \
	    "shared_add1 shared_add255 sum read reset_reshare_touch " \
	    "area_life area_add", ops, " ")
	for (i = 1; i <= n; i++) {
		op = ops[i]
		t1 = get("scale/" op "@1"); t2 = get("scale/" op "@2")
		v = (t1 == "" || t2 == "" || c1 == "" || c2 == "") ? "" : \
		    (t1 / t2) / (c1 / c2)
		target("unrelated " op ": 2T/1T >= 0.9x ceiling's", v, ">=", \
		    0.9, "x", "scale/" op "@1 scale/" op "@2 scale/ceiling@1 " \
		    "scale/ceiling@2", "")
	}
	rtarget("2 threads, one counter: shared add <= 1.3x bare rseq", \
	    "hot/lazy_add1@2", "rseq_add@2", "<=", 1.3)
	rtarget("owner add after share+reset <= 1.2x fresh", \
	    "dual/owner_add_after_reset@1", "dual/owner_add_fresh@1", "<=", 1.2)
	rtarget("re-share faster than first share", \
	    "dual/reshare@1", "dual/first_share@1", "<=", 1)
	rtarget("shared-before mm life: cached >= 10x eager, 192 slots", \
	    "life/eager/192@1", "life/cached_shared_before/192@1", ">=", 10)
	rtarget("add 1500 on batch 2^16 <= 1.5x add 1", \
	    "bytes/shared_add1500_b16@1", "bytes/shared_add1_b16@1", "<=", 1.5)
	rtarget("2 threads: add 1500 (2^16) >= 10x contended atomic", \
	    "bytes/atomic_add1500@2", "bytes/shared_add1500_b16@2", ">=", 10)
	bound("bytes/atomic_add1500@2", "rseq_add@2", 10)
	rtarget("area add <= 1.5x bare rseq add", \
	    "scale/area_add@1", "rseq_add@1", "<=", 1.5)
	rtarget("two-field area update <= 2x two counter adds", \
	    "area/two_field@1", "area/two_counters@1", "<=", 2)
	rtarget("pcpu_alloc_lazy+free: 4096 slots <= 2x 1 slot", \
	    "area/alloc_lazy_free/4096@1", "area/alloc_lazy_free/1@1", "<=", 2)
	rtarget("LAZY life: 1024 slots <= 2x 2 slots (1 thread)", \
	    "scale/lazy_life/1024@1", "scale/lazy_life/2@1", "<=", 2)
	rtarget("tc churn, 64 slots: cached+lazy >= 10x eager", \
	    "tc/eager/64@2", "tc/cached_lazy/64@2", ">=", 10)
	rtarget("tc churn cached: 4096 slots <= 2x 64 slots", \
	    "tc/cached_lazy/4096@2", "tc/cached_lazy/64@2", "<=", 2)
	# About 2/3: a failing constructor fails only its own allocation.
	k = "cache_ctorfail/CACHED@1"
	target("constructor failing 1 in 3: allocations that succeed", \
	    (k in asr) ? asr[k] : "", ">=", 0.6, "", k, "")
}

function srow(label, k) {
	printf "  %-44s %10s%s\n", label, cell(k, 10), get(k) == "" ? "" : " ns"
}
