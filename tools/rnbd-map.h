/* SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only */
/*
 * rnbd map / unmap / list-mapped: an rnbd device as /dev/ublkbN through
 * the kernel's ublk driver (rnbd-map.c). Each returns rnbd's exit status.
 */
#ifndef RNBD_MAP_H
#define RNBD_MAP_H

#include <stdbool.h>
#include <stddef.h>

#include "rnbd/rnbd.h"

/* exit status of `rnbd map` when the kernel has no ublk (-EOPNOTSUPP) */
#define RNBD_EXIT_NO_UBLK 3

struct rnbd_map_opts {
	const struct rtrs_path_addr *paths;
	size_t npaths;
	const struct rtrs_clt_attr *attr;
	const char *sessname;
	const char *device;
	const struct rtrs_auth *auth;   /* NULL: no key */
	bool ro;
	bool foreground;
	unsigned queues;                /* 0: one per IO connection */
};

int rnbd_map_main(const struct rnbd_map_opts *o);
int rnbd_unmap_main(int argc, char **argv);
int rnbd_list_mapped_main(int argc, char **argv);

#endif
