// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * nbdkit-rnbd-plugin: serve an rnbd device as an NBD export, so that NBD
 * clients (fio's nbd engine, nbdcopy, qemu-img, qemu-io, nbdfuse) use it
 * unchanged.
 *
 *   nbdkit rnbd server=ADDR:PORT[,...] device=NAME [session=NAME]
 *         [keyfile=FILE [identity=NAME]]
 *               [provider=P] [readonly=true]
 *
 * One librnbd session (one path per server address) and one device handle
 * serve every NBD connection; nbdkit's worker threads each wait for their
 * own request, so up to nbdkit's thread count are in flight.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NBDKIT_API_VERSION 2
#include <nbdkit-plugin.h>

#include "rnbd/rnbd.h"

#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#define MAX_PATHS 8

static char *servers, *device, *session, *provider, *keyfile, *identity;
static bool ro;
static struct rnbd_sess *sess;
static struct rnbd_dev *dev;
static struct rnbd_dev_info info;

static void plg_unload(void)
{
	free(servers);
	free(device);
	free(session);
	free(provider);
	free(keyfile);
	free(identity);
}

static int plg_config(const char *key, const char *value)
{
	char **dst = NULL;

	if (!strcmp(key, "server"))
		dst = &servers;
	else if (!strcmp(key, "device"))
		dst = &device;
	else if (!strcmp(key, "session"))
		dst = &session;
	else if (!strcmp(key, "provider"))
		dst = &provider;
	else if (!strcmp(key, "keyfile"))
		dst = &keyfile;
	else if (!strcmp(key, "identity"))
		dst = &identity;
	else if (!strcmp(key, "readonly")) {
		int r = nbdkit_parse_bool(value);

		if (r < 0)
			return -1;
		ro = r;
		return 0;
	} else {
		nbdkit_error("unknown parameter '%s'", key);
		return -1;
	}
	free(*dst);
	*dst = strdup(value);
	return *dst ? 0 : -1;
}

static int plg_config_complete(void)
{
	if (!servers || !device) {
		nbdkit_error("server= and device= are required");
		return -1;
	}
	if (identity && !keyfile) {
		nbdkit_error("identity= needs keyfile=");
		return -1;
	}
	return 0;
}

#define plg_config_help \
	"server=ADDR:PORT[,...] (required) rnbd-server address, one path each\n" \
	"device=NAME            (required) the export to serve\n" \
	"session=NAME           librtrs session name (default nbdkit-rnbd-PID)\n" \
	"provider=P             libfabric provider (default tcp)\n" \
	"readonly=BOOL          open the device read-only\n" \
	"keyfile=FILE           authenticate with a key of FILE\n" \
	"identity=NAME          the identity of keyfile= to use"

/* After nbdkit forked into the background: librtrs threads start here. */
static int plg_after_fork(void)
{
	struct rtrs_path_addr paths[MAX_PATHS];
	struct rtrs_clt_attr attr;
	char name[64], *list = strdup(servers), *save = NULL;
	size_t n = 0;
	int ret;

	if (!list)
		return -1;
	for (char *t = strtok_r(list, ",", &save); t && n < MAX_PATHS;
	     t = strtok_r(NULL, ",", &save))
		paths[n++] = (struct rtrs_path_addr){ NULL, t };
	rtrs_clt_attr_init(&attr);
	attr.provider = provider;
	/* requests wait for a path (and a restarted server) instead of
	 * failing: an NBD client sees delay, not errors */
	attr.no_path_timeout_ms = 30000;
	snprintf(name, sizeof(name), "nbdkit-rnbd-%d", (int)getpid());
	{
		struct rtrs_auth auth = { sizeof(auth), keyfile, identity };

		ret = rnbd_sess_open_auth(session ? session : name, paths, n,
					  &attr, keyfile ? &auth : NULL, &sess);
	}
	free(list);
	if (ret) {
		nbdkit_error("rnbd: connect to %s: %s", servers, rtrs_strerror(ret));
		return -1;
	}
	ret = rnbd_dev_open(sess, device, ro ? RNBD_ACCESS_RO : RNBD_ACCESS_RW,
			    &dev);
	if (ret) {
		nbdkit_error("rnbd: open %s: %s", device, rtrs_strerror(ret));
		rnbd_sess_close(sess);
		sess = NULL;
		return -1;
	}
	rnbd_dev_info(dev, &info);
	return 0;
}

static void plg_cleanup(void)
{
	if (dev)
		rnbd_dev_close(dev);
	if (sess)
		rnbd_sess_close(sess);
	dev = NULL;
	sess = NULL;
}

static void *plg_open(int readonly)
{
	(void)readonly;
	return dev;             /* one device for every connection */
}

static int64_t plg_get_size(void *h)
{
	(void)h;
	return (int64_t)info.size;
}

static int plg_can_write(void *h)
{
	(void)h;
	return !ro;
}

static int plg_can_one(void *h)
{
	(void)h;
	return 1;
}

static int plg_can_fua(void *h)
{
	(void)h;
	return NBDKIT_FUA_NATIVE;
}

static int plg_can_trim(void *h)
{
	(void)h;
	return !ro && info.max_discard_size > 0;
}

static int plg_can_zero(void *h)
{
	(void)h;
	return !ro && info.max_write_zeroes_size > 0;
}

static int plg_block_size(void *h, uint32_t *min, uint32_t *pref,
			   uint32_t *max)
{
	(void)h;
	*min = info.logical_block_size;
	*pref = info.physical_block_size > 4096 ? info.physical_block_size : 4096;
	*max = 0xffffffff;      /* the helpers split long requests */
	return 0;
}

static int fail(int ret)
{
	nbdkit_set_error(-ret);
	nbdkit_error("rnbd: %s", rtrs_strerror(ret));
	return -1;
}

static int plg_pread(void *h, void *buf, uint32_t count, uint64_t off,
		     uint32_t flags)
{
	int ret = rnbd_pread(h, buf, count, off);

	(void)flags;
	return ret ? fail(ret) : 0;
}

static int plg_pwrite(void *h, const void *buf, uint32_t count, uint64_t off,
		      uint32_t flags)
{
	int ret = rnbd_pwrite((struct rnbd_dev *)h, buf, count, off,
			      flags & NBDKIT_FLAG_FUA ? RNBD_FUA : 0);

	return ret ? fail(ret) : 0;
}

static int plg_flush_cb(void *h, uint32_t flags)
{
	int ret = rnbd_flush(h);

	(void)flags;
	return ret ? fail(ret) : 0;
}

static int plg_trim(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	int ret = rnbd_discard(h, off, count);

	if (!ret && (flags & NBDKIT_FLAG_FUA))
		ret = rnbd_flush(h);
	return ret ? fail(ret) : 0;
}

static int plg_zero(void *h, uint32_t count, uint64_t off, uint32_t flags)
{
	unsigned f = (flags & NBDKIT_FLAG_MAY_TRIM ? 0 : RNBD_NOUNMAP) |
		     (flags & NBDKIT_FLAG_FUA ? RNBD_FUA : 0);
	int ret = rnbd_write_zeroes(h, off, count, f);

	return ret ? fail(ret) : 0;
}

static struct nbdkit_plugin plugin = {
	.name = "rnbd",
	.longname = "rnbd devices over librtrs",
	.version = RTRS_VERSION_STRING,
	.description = "Serve an rnbd device (rnbd-server over librtrs) as NBD",
	.unload = plg_unload,
	.config = plg_config,
	.config_complete = plg_config_complete,
	.config_help = plg_config_help,
	.after_fork = plg_after_fork,
	.cleanup = plg_cleanup,
	.open = plg_open,
	.get_size = plg_get_size,
	.can_write = plg_can_write,
	.can_flush = plg_can_one,
	.can_multi_conn = plg_can_one,
	.can_fua = plg_can_fua,
	.can_trim = plg_can_trim,
	.can_zero = plg_can_zero,
	.block_size = plg_block_size,
	.pread = plg_pread,
	.pwrite = plg_pwrite,
	.flush = plg_flush_cb,
	.trim = plg_trim,
	.zero = plg_zero,
	.errno_is_preserved = 0,
};

NBDKIT_REGISTER_PLUGIN(plugin)
