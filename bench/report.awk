# SPDX-License-Identifier: MIT
#
# bench/report.awk - turn pcpu-bench's JSON (--benchmark_out_format=json)
# into the plain-text tables bench/run prints.
#
#   awk -v dat=init-cost.dat -f bench/report.awk results.json
#
# Google Benchmark writes one key per line, so no JSON parser is needed
# (and none is assumed: POSIX awk, mawk included).  Per benchmark it uses
# the "median" aggregate when there were repetitions, else the mean of the
# iteration runs.  Times are wall-clock ns per operation (the benchmarks
# UseRealTime()); for two threads that is wall time over both threads'
# operations, the inverse of their combined throughput.
#
# If dat is set, the init-cost table is also written there for
# bench/plot.gp: slots, EAGER ns, DUAL ns, EAGER/DUAL, DUAL+share ns ("?"
# where missing).  Exit status 1 if any benchmark reported an error.

BEGIN {
	unit["ns"] = 1; unit["us"] = 1e3; unit["ms"] = 1e6; unit["s"] = 1e9
	inb = 0; inrec = 0; nerr = 0; reps = 1
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
		if (!(k in err)) {
			err[k] = rec["error_message"]
			errkeys[++nerr] = k
		}
		return
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
	if (k in err)
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
		return sprintf("%" w "s", (k in err) ? "ERROR" : "-")
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
	# The slot counts the init benchmarks ran with, ascending.
	ns = 0
	for (k in seen) {
		if (k !~ /^init_(share_)?destroy\/(EAGER|DUAL)\/[0-9]+@1$/)
			continue
		s = k
		sub(/@1$/, "", s)
		sub(/^.*\//, "", s)
		s += 0
		if (s in isslot)
			continue
		isslot[s] = 1
		slots[++ns] = s
	}
	for (i = 2; i <= ns; i++) {
		v = slots[i]
		for (j = i - 1; j >= 1 && slots[j] > v; j--)
			slots[j + 1] = slots[j]
		slots[j + 1] = v
	}

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
		printf "%6s %11s %11s %11s %13s %11s\n", "slots", "EAGER", \
		    "DUAL", "EAGER/DUAL", "DUAL+share", "share/EAGER"
		for (i = 1; i <= ns; i++) {
			s = slots[i]
			ke = "init_destroy/EAGER/" s "@1"
			kd = "init_destroy/DUAL/" s "@1"
			ks = "init_share_destroy/DUAL/" s "@1"
			printf "%6d %11s %11s %11s %13s %11s\n", s, \
			    cell(ke, 11), cell(kd, 11), \
			    ratio(get(ke), get(kd), 11), cell(ks, 13), \
			    ratio(get(ks), get(ke), 11)
			if (dat != "") {
				e = get(ke); d = get(kd); sh = get(ks)
				r = (e == "" || d == "" || d <= 0) ? "?" : e / d
				if (e == "") e = "?"
				if (d == "") d = "?"
				if (sh == "") sh = "?"
				printf "%d %s %s %s %s\n", s, e, d, r, sh > dat
			}
		}
		if (dat != "")
			close(dat)
		print "DUAL+share: init, pcpu_counter_share() (the upgrade to" \
		    " per-CPU slots), destroy."
	}

	plain = get("plain_add@1")
	print ""
	print "Add cost, one thread (ns per add of 1)"
	row("plain add", "int64_t += 1 in memory", "plain_add@1", plain)
	row("atomic add", "relaxed __atomic_fetch_add, one word", \
	    "atomic_add@1", plain)
	row("owner add", "DUAL, unshared, by its owner", "owner_add@1", plain)
	row("shared add", "DUAL after share, by a non-owner", \
	    "shared_add@1", plain)
	row("eager add", "EAGER counter", "eager_add@1", plain)

	a1 = get("atomic_add@1"); a2 = get("atomic_add@2")
	s1 = get("shared_add@1"); s2 = get("shared_add@2")
	if (("atomic_add@2" in seen) || ("shared_add@2" in seen)) {
		print ""
		print "Two threads adding to one counter at once (wall ns per" \
		    " add over both threads)"
		row2("atomic add", "one contended word", "atomic_add@2", a1)
		row2("shared add", "DUAL shared, per-CPU slots", \
		    "shared_add@2", s1)
		if (a2 != "" && s2 != "")
			printf "  Throughput, shared add / atomic add: %s\n", \
			    num(a2 / s2) "x"
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

	if (nerr > 0) {
		print ""
		print "ERRORS:"
		for (i = 1; i <= nerr; i++)
			printf "  %s: %s\n", errkeys[i], err[errkeys[i]]
		exit 1
	}
}

function row(label, what, k, base, t) {
	t = get(k)
	printf "  %-11s %-38s %9s%s", label, "(" what ")", cell(k, 9), \
	    t == "" ? "" : " ns"
	if (k != "plain_add@1" && t != "" && base != "")
		printf " %9s plain", ratio(t, base, 9)
	printf "\n"
}

# ns per add, combined throughput, and speed-up over the one-thread run.
function row2(label, what, k, one, t) {
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
