/* Prints pcpu_update_method(): tests/all-methods.sh asks it what a given
 * environment selects. */
#include <pcpu.h>
#include <stdio.h>

int main(void)
{
	return puts(pcpu_update_method()) < 0;
}
