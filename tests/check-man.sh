#!/bin/sh
# SPDX-License-Identifier: MIT
#
# check-man.sh - keep the man pages in step with the public headers.
#
#  (a) Every exported function of include/pcpu/*.h has man/man3/NAME.3.
#      Exported: a declaration that starts with PCPU_API, or a static
#      inline function, named pcpu_* but not pcpu__* (those are not API).
#  (b) Every real page (not a one-line ".so man3/OTHER.3" alias) names in
#      its SYNOPSIS only functions the headers declare, each with the
#      header's return type (.Ft) and parameters (.Fn arguments), and lists
#      exactly those functions in NAME.  Every alias points at a real page
#      whose NAME lists the alias, and every exported function appears in
#      some real page's SYNOPSIS.  Every .Xr to a page of the family names
#      a page that exists.
#  (c) If MANDOC is not empty, "$MANDOC -Tlint -W warning" prints nothing
#      for any page but "referenced manual not found" (and, for alias
#      pages, the ".so is fragile" warning that every .so page draws).
#
# Run by "make check" with top_srcdir and MANDOC in the environment; by
# hand: top_srcdir=. MANDOC=mandoc sh tests/check-man.sh
# Exit status: 0 pass, 1 fail.

top_srcdir=${top_srcdir:-$(dirname "$0")/..}
MANDOC=${MANDOC-}
man3=$top_srcdir/man/man3
man7=$top_srcdir/man/man7
status=0

fail() {
	printf 'check-man: FAIL: %s\n' "$*" >&2
	status=1
}

# Normalization shared by both awk programs: one space between words, none
# around '*' and ','.  "const char *" and "const  char*" compare equal.
NORM='
function norm(s) {
	gsub(/[ \t\n]+/, " ", s)
	sub(/^ /, "", s)
	sub(/ $/, "", s)
	gsub(/ ?\* ?/, "*", s)
	gsub(/ ?, ?/, ",", s)
	return s
}'

# --- the exported functions: "name|ret|params|raw ret|raw params" ---------
headers=$(ls "$top_srcdir"/include/pcpu/*.h 2>/dev/null)
if [ -z "$headers" ]; then
	fail "no headers in $top_srcdir/include/pcpu"
	exit 1
fi
# Lists of paths are split on blanks below; like automake, this script
# does not support blanks in $top_srcdir.
# shellcheck disable=SC2086
protos=$(awk "$NORM"'
# Parentheses in d not yet closed: a declaration is complete at 0.
function open_parens(d,   t) {
	t = d
	return gsub(/\(/, "(", t) - gsub(/\)/, ")", t)
}
function emit(d,   o, c, i, depth, ch, pre, args, name, ret, raw) {
	o = index(d, "(")
	if (o == 0)
		return
	# The ")" that closes the parameter list, past any function-pointer
	# parameter (its own parentheses nest inside).
	c = 0
	depth = 0
	for (i = o; i <= length(d); i++) {
		ch = substr(d, i, 1)
		if (ch == "(")
			depth++
		else if (ch == ")" && --depth == 0) {
			c = i
			break
		}
	}
	if (c == 0)
		return
	pre = substr(d, 1, o - 1)
	args = substr(d, o + 1, c - o - 1)
	sub(/[ \t]+$/, "", pre)
	if (!match(pre, /[A-Za-z_][A-Za-z0-9_]*$/))
		return
	name = substr(pre, RSTART)
	ret = substr(pre, 1, RSTART - 1)
	sub(/^[ \t]*PCPU_API[ \t]+/, "", ret)
	sub(/^[ \t]*PCPU__INLINE[ \t]+/, "static inline ", ret)
	if (name !~ /^pcpu_[a-z]/ || name ~ /^pcpu__/)
		return
	if (kind == "api" && name !~ /^pcpu_[a-z_]*$/)
		return
	raw = ret
	gsub(/[ \t]+/, " ", raw)
	sub(/^ /, "", raw)
	sub(/ $/, "", raw)
	print name "|" norm(ret) "|" norm(args) "|" raw "|" args
}
!kind && /^PCPU_API[ \t]/ { kind = "api"; decl = "" }
!kind && /^(static[ \t]+inline|PCPU__INLINE)[ \t]/ { kind = "inline"; decl = "" }
kind {
	decl = decl " " $0
	if (index(decl, "(") && open_parens(decl) <= 0) {
		gsub(/[ \t]+/, " ", decl)
		emit(decl)
		kind = ""
	}
}' $headers)
if [ -z "$protos" ]; then
	fail "no exported function found in $headers"
	exit 1
fi
functions=$(printf '%s\n' "$protos" | cut -d'|' -f1 | sort -u)

# --- (a) a page per function ------------------------------------------
for f in $functions; do
	[ -f "$man3/$f.3" ] || fail "$f: man/man3/$f.3 is missing"
done

# --- sort pages into real ones and aliases ----------------------------
real=
alias=
for p in "$man3"/*.3; do
	[ -f "$p" ] || continue
	if head -n 1 "$p" | grep -q '^\.so '; then
		alias="$alias $p"
	else
		real="$real $p"
	fi
done
if [ -z "$real" ]; then
	fail "no real page in man/man3"
	exit 1
fi

# --- (b) SYNOPSIS against the headers ---------------------------------
# Prints "DOC name" for every function a SYNOPSIS declares and
# "FAIL message" for every mismatch.
# shellcheck disable=SC2086
syn=$(printf '%s\n' "$protos" | awk "$NORM"'
# Split the arguments of an mdoc macro line into A[1..n].
function args(s,   n, i, L, c, tok) {
	split("", A)
	n = 0
	L = length(s)
	i = 1
	while (i <= L) {
		c = substr(s, i, 1)
		if (c == " " || c == "\t") {
			i++
			continue
		}
		tok = ""
		if (c == "\"") {
			for (i++; i <= L && substr(s, i, 1) != "\""; i++)
				tok = tok substr(s, i, 1)
			i++
		} else {
			for (; i <= L; i++) {
				c = substr(s, i, 1)
				if (c == " " || c == "\t")
					break
				tok = tok c
			}
			if (tok ~ /^[.,:;()?!|\[\]]$/)
				continue
		}
		gsub(/\\&/, "", tok)
		A[++n] = tok
	}
	return n
}
function join(from, to, sep,   i, s) {
	s = ""
	for (i = from; i <= to; i++)
		s = s (i > from ? sep : "") A[i]
	return s
}
function check(name, ret, par,   r, p) {
	SYN[name] = 1
	nsyn++
	print "DOC " name
	if (!(name in RET)) {
		print "FAIL " page ": SYNOPSIS has .Fn " name \
		    ", which no header exports"
		return
	}
	r = norm(ret)
	p = norm(par)
	if (r != RET[name])
		print "FAIL " page ": " name ": .Ft is \"" ret \
		    "\", the header returns \"" RAWRET[name] "\""
	if (p != PAR[name])
		print "FAIL " page ": " name ": arguments are (" par \
		    "), the header has (" RAWPAR[name] ")"
}
function endpage(   n) {
	if (page == "")
		return
	if (!nsyn)
		print "FAIL " page ": no .Fn in SYNOPSIS"
	if (!inc)
		print "FAIL " page ": no .In pcpu.h in SYNOPSIS"
	for (n in NM)
		if (!(n in SYN))
			print "FAIL " page ": NAME lists " n \
			    ", SYNOPSIS has no .Fn " n
	for (n in SYN)
		if (!(n in NM))
			print "FAIL " page ": SYNOPSIS has .Fn " n \
			    ", NAME has no .Nm " n
}
NR == FNR {
	split($0, F, "|")
	RET[F[1]] = F[2]
	PAR[F[1]] = F[3]
	RAWRET[F[1]] = F[4]
	RAWPAR[F[1]] = F[5]
	next
}
FNR == 1 {
	endpage()
	page = FILENAME
	sub(/.*\//, "man3/", page)
	sec = ""
	ret = ""
	fo = ""
	nsyn = 0
	inc = 0
	split("", NM)
	split("", SYN)
}
/^\.Sh / {
	sec = substr($0, 5)
	next
}
sec == "NAME" && /^\.Nm / {
	if (args(substr($0, 4)) > 0)
		NM[A[1]] = 1
	next
}
sec != "SYNOPSIS" { next }
/^\.In / {
	if (args(substr($0, 4)) > 0 && A[1] == "pcpu.h")
		inc = 1
	next
}
/^\.Ft / {
	ret = join(1, args(substr($0, 4)), " ")
	next
}
/^\.Fn / {
	n = args(substr($0, 4))
	check(A[1], ret, join(2, n, ","))
	next
}
/^\.Fo / {
	args(substr($0, 4))
	fo = A[1]
	fa = ""
	next
}
/^\.Fa / && fo != "" {
	n = args(substr($0, 4))
	fa = fa (fa != "" ? "," : "") join(1, n, ",")
	next
}
/^\.Fc/ && fo != "" {
	check(fo, ret, fa)
	fo = ""
	next
}
END { endpage() }
' - $real)
if printf '%s\n' "$syn" | grep -q '^FAIL '; then
	printf '%s\n' "$syn" | sed -n 's/^FAIL /check-man: FAIL: /p' >&2
	status=1
fi
documented=$(printf '%s\n' "$syn" | sed -n 's/^DOC //p' | sort -u)

for f in $functions; do
	printf '%s\n' "$documented" | grep -qx "$f" ||
		fail "$f: no real page has it in its SYNOPSIS"
done

# Aliases: exactly ".so man3/REAL.3", REAL.3 real, its NAME lists the alias.
for p in $alias; do
	name=$(basename "$p" .3)
	if [ "$(wc -l < "$p")" -ne 1 ]; then
		fail "man3/$name.3: an alias page must be one .so line"
		continue
	fi
	target=$(sed -n 's|^\.so man3/\([A-Za-z0-9_]*\.3\)$|\1|p' "$p")
	if [ -z "$target" ]; then
		fail "man3/$name.3: expected \".so man3/NAME.3\", found \"$(cat "$p")\""
		continue
	fi
	case " $real " in
	*" $man3/$target "*) ;;
	*)
		fail "man3/$name.3: .so target man3/$target is not a real page"
		continue
		;;
	esac
	grep -Eq "^\\.Nm $name( ,)?\$" "$man3/$target" ||
		fail "man3/$name.3: man3/$target has no .Nm $name in NAME"
done

# Cross references within the family.
xr_bad=$(for p in "$man3"/*.3 "$man7"/*.7; do
	[ -f "$p" ] || continue
	awk '/^\./ { for (i = 1; i < NF - 1; i++)
		if (($i == "Xr" || $i == ".Xr") &&
		    ($(i + 1) ~ /^pcpu_/ || $(i + 1) == "libpcpu"))
			print $(i + 1), $(i + 2) }' "$p" |
	while read -r xname xsec; do
		[ -f "$top_srcdir/man/man$xsec/$xname.$xsec" ] ||
			echo "$(basename "$p"): .Xr $xname $xsec: no such page"
	done
done)
if [ -n "$xr_bad" ]; then
	printf '%s\n' "$xr_bad" | sed 's/^/check-man: FAIL: /' >&2
	status=1
fi

# --- (c) mandoc -Tlint --------------------------------------------------
# Allowed: cross references to pages not installed on this machine, and
# mandoc's note that its database is outdated (both about the host, not the
# page); for alias pages also the warning that .so is fragile.  An alias is
# linted from man/ because mandoc resolves .so against the current
# directory, as man(1) does against the manual's root.
lint_filter() {
	grep -v -e 'STYLE: referenced manual not found' \
	    -e 'outdated mandoc\.db' -e "${1:-STYLE: referenced manual not found}"
}
if [ -n "$MANDOC" ]; then
	for p in $real "$man7"/*.7; do
		[ -f "$p" ] || continue
		out=$($MANDOC -Tlint -W warning "$p" 2>&1 | lint_filter)
		[ -z "$out" ] || fail "mandoc -Tlint:
$out"
	done
	for p in $alias; do
		out=$( (cd "$top_srcdir/man" &&
		    $MANDOC -Tlint -W warning "man3/$(basename "$p")") 2>&1 |
		    lint_filter 'WARNING: \.so is fragile')
		[ -z "$out" ] || fail "mandoc -Tlint:
$out"
	done
else
	echo "check-man: MANDOC is empty: mandoc -Tlint skipped"
fi

[ $status -eq 0 ] && echo "check-man: PASS ($(echo "$functions" | wc -l | tr -d ' ') functions)"
exit $status
