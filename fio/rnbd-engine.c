// SPDX-License-Identifier: GPL-2.0-only
/*
 * librnbd-fio.so: a fio ioengine for rnbd devices (asynchronous, as fio's
 * own nbd engine). It includes fio's GPL-2.0 headers and runs inside fio,
 * so it is GPL-2.0; it is built against the source of the installed fio
 * (scripts/fio-src.sh), because fio loads only engines of its own version.
 *
 *   [job]
 *   ioengine=external:/path/to/librnbd-fio.so
 *   rnbd_server=ADDR:PORT[,ADDR:PORT...]
 *   rnbd_device=NAME
 *   rnbd_no_path_timeout=MS        (default 30000: wait for a path)
 *   rnbd_access=ro|rw|migration    (default: rw for a job that writes or
 *                                   trims, else ro; two writing jobs on
 *                                   one device need migration)
 *   rnbd_poll=0|1                  (default 1: the job's thread reads its
 *                                   session's completions itself, librtrs
 *                                   RTRS_PROGRESS_POLL; 0: they arrive on
 *                                   librtrs threads and wait in a list)
 *   rnbd_busy_poll=US              (default 0: fio sleeps until a
 *                                   completion; > 0: it spins this long
 *                                   first, whether or not a CPU is
 *                                   spare; RTRS_POLL_US in the
 *                                   environment spins in rnbd_poll()
 *                                   only while one is, rtrs(7))
 *
 * Each job opens its own librnbd session (one path per address) and the
 * device.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fio.h"
#include "optgroup.h"

#include <rnbd/rnbd.h>

#define MAX_PATHS 8

struct rnbd_fio_options {
	void *pad;                      /* no option may sit at offset 0 */
	char *server;
	char *device;
	unsigned int no_path_timeout;
	char *access;
	unsigned int busy_poll;
	unsigned int poll;
	char *keyfile;
	char *identity;
};

static struct fio_option options[] = {
	{
		.name = "rnbd_server",
		.lname = "rnbd server",
		.help = "rnbd-server address(es), ADDR:PORT[,ADDR:PORT...]",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct rnbd_fio_options, server),
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_device",
		.lname = "rnbd device",
		.help = "name of the exported device",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct rnbd_fio_options, device),
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_no_path_timeout",
		.lname = "rnbd no-path timeout",
		.help = "ms requests wait for a path before failing",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct rnbd_fio_options, no_path_timeout),
		.def = "30000",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_access",
		.lname = "rnbd access mode",
		.help = "ro, rw or migration (default: rw if the job writes)",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct rnbd_fio_options, access),
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_busy_poll",
		.lname = "rnbd busy poll",
		.help = "us to spin for a completion before sleeping",
		.type = FIO_OPT_INT,
		.off1 = offsetof(struct rnbd_fio_options, busy_poll),
		.def = "0",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_poll",
		.lname = "rnbd poll mode",
		.help = "1: reap completions on the job's thread (librtrs poll mode)",
		.type = FIO_OPT_BOOL,
		.off1 = offsetof(struct rnbd_fio_options, poll),
		.def = "1",
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_keyfile",
		.lname = "rnbd key file",
		.help = "authenticate with a key of this file (rtrs_clt_open_auth(3))",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct rnbd_fio_options, keyfile),
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = "rnbd_identity",
		.lname = "rnbd identity",
		.help = "the identity of rnbd_keyfile to use (default: its only key)",
		.type = FIO_OPT_STR_STORE,
		.off1 = offsetof(struct rnbd_fio_options, identity),
		.category = FIO_OPT_C_ENGINE,
		.group = FIO_OPT_G_NBD,
	},
	{
		.name = NULL,
	},
};

struct rnbd_data {
	struct rnbd_sess *sess;
	struct rnbd_dev *dev;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct io_u **done;             /* completed, not yet reaped */
	unsigned int ndone;
	struct io_u **events;           /* handed to fio by getevents */
	unsigned int cap;
};

static int eng_connect(struct thread_data *td, struct rnbd_data *d)
{
	struct rnbd_fio_options *o = td->eo;
	struct rtrs_path_addr paths[MAX_PATHS];
	struct rtrs_clt_attr attr;
	char name[64], *list, *save = NULL;
	enum rnbd_access mode;
	size_t n = 0;
	int ret;

	if (!o->server || !o->device) {
		log_err("fio: rnbd: rnbd_server and rnbd_device are required\n");
		return 1;
	}
	if (!o->access)
		mode = td_write(td) || td_trim(td) ? RNBD_ACCESS_RW : RNBD_ACCESS_RO;
	else if (!strcmp(o->access, "ro"))
		mode = RNBD_ACCESS_RO;
	else if (!strcmp(o->access, "rw"))
		mode = RNBD_ACCESS_RW;
	else if (!strcmp(o->access, "migration"))
		mode = RNBD_ACCESS_MIGRATION;
	else {
		log_err("fio: rnbd: rnbd_access must be ro, rw or migration\n");
		return 1;
	}
	list = strdup(o->server);
	if (!list)
		return 1;
	for (char *t = strtok_r(list, ",", &save); t && n < MAX_PATHS;
	     t = strtok_r(NULL, ",", &save))
		paths[n++] = (struct rtrs_path_addr){ NULL, t };
	rtrs_clt_attr_init(&attr);
	attr.no_path_timeout_ms = o->no_path_timeout;
	if (o->poll)
		attr.progress = RTRS_PROGRESS_POLL;
	snprintf(name, sizeof(name), "fio-%d-%d", (int)getpid(), td->thread_number);
	{
		struct rtrs_auth auth = { sizeof(auth), o->keyfile, o->identity };

		ret = rnbd_sess_open_auth(name, paths, n, &attr,
					  o->keyfile && *o->keyfile ? &auth : NULL,
					  &d->sess);
	}
	free(list);
	if (ret) {
		log_err("fio: rnbd: connect %s: %s\n", o->server, rtrs_strerror(ret));
		return 1;
	}
	ret = rnbd_dev_open(d->sess, o->device, mode, &d->dev);
	if (ret) {
		log_err("fio: rnbd: open %s: %s\n", o->device, rtrs_strerror(ret));
		rnbd_sess_close(d->sess);
		d->sess = NULL;
		return 1;
	}
	return 0;
}

static void eng_disconnect(struct rnbd_data *d)
{
	if (d->dev)
		rnbd_dev_close(d->dev);
	if (d->sess)
		rnbd_sess_close(d->sess);
	d->dev = NULL;
	d->sess = NULL;
}

/* The device's size, or 0 on failure. When fio forks its jobs (the
 * default, thread=0), the session that learns it is opened in a child of
 * its own: RDMA resources, and libfabric's verbs provider, which keeps the
 * devices it opened for the life of the process, do not survive a fork,
 * so the process that forks the jobs must never have used them. */
static uint64_t probe_size(struct thread_data *td, struct rnbd_data *d)
{
	struct rnbd_dev_info in;
	uint64_t size = 0;
	int fds[2], st;
	pid_t pid;

	if (td->o.use_thread) {
		if (eng_connect(td, d))
			return 0;
		rnbd_dev_info(d->dev, &in);
		eng_disconnect(d);
		return in.size;
	}
	if (pipe(fds))
		return 0;
	pid = fork();
	if (pid < 0) {
		close(fds[0]);
		close(fds[1]);
		return 0;
	}
	if (pid == 0) {
		close(fds[0]);
		if (!eng_connect(td, d)) {
			rnbd_dev_info(d->dev, &in);
			size = in.size;
			eng_disconnect(d);
		}
		_exit(write(fds[1], &size, sizeof(size)) == sizeof(size) ? 0 : 1);
	}
	close(fds[1]);
	if (read(fds[0], &size, sizeof(size)) != sizeof(size))
		size = 0;
	close(fds[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return size;
}

/* In the parent: declare the "file" and learn its size (in a child of its
 * own, see probe_size()) before fio forks its jobs. */
static int eng_setup(struct thread_data *td)
{
	struct rnbd_data *d = calloc(1, sizeof(*d));
	struct fio_file *f;

	if (!d)
		return 1;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	td->io_ops_data = d;
	if (!td->files_index) {
		add_file(td, "rnbd", 0, 0);
		td->o.nr_files = td->o.nr_files ? : 1;
		td->o.open_files++;
	}
	f = td->files[0];
	f->real_file_size = probe_size(td, d);
	return f->real_file_size ? 0 : 1;
}

static int eng_init(struct thread_data *td)
{
	struct rnbd_data *d = td->io_ops_data;

	d->cap = td->o.iodepth ? td->o.iodepth : 1;
	d->done = calloc(d->cap, sizeof(*d->done));
	d->events = calloc(d->cap, sizeof(*d->events));
	if (!d->done || !d->events)
		return 1;
	return eng_connect(td, d);
}

static void eng_cleanup(struct thread_data *td)
{
	struct rnbd_data *d = td->io_ops_data;

	if (!d)
		return;
	eng_disconnect(d);
	free(d->done);
	free(d->events);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cond);
	free(d);
	td->io_ops_data = NULL;
}

/* On a librtrs thread, or inside rnbd_poll() on the job's thread. */
static void eng_done(void *priv, int status)
{
	struct io_u *io_u = priv;
	struct rnbd_data *d = io_u->engine_data;

	io_u->error = -status;
	pthread_mutex_lock(&d->lock);
	d->done[d->ndone] = io_u;       /* at most iodepth are in flight */
	__atomic_store_n(&d->ndone, d->ndone + 1, __ATOMIC_RELEASE);
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static enum fio_q_status eng_queue(struct thread_data *td, struct io_u *io_u)
{
	struct rnbd_data *d = td->io_ops_data;
	enum rnbd_op op;
	void *buf = io_u->xfer_buf;
	uint64_t off = io_u->offset, len = io_u->xfer_buflen;
	int ret;

	fio_ro_check(td, io_u);
	io_u->engine_data = d;
	switch (io_u->ddir) {
	case DDIR_READ: op = RNBD_READ; break;
	case DDIR_WRITE: op = RNBD_WRITE; break;
	case DDIR_TRIM: op = RNBD_DISCARD; buf = NULL; break;
	case DDIR_SYNC: op = RNBD_FLUSH; buf = NULL; off = len = 0; break;
	default:
		io_u->error = EINVAL;
		return FIO_Q_COMPLETED;
	}
	ret = rnbd_submit(d->dev, op, off, buf, len, 0, eng_done, io_u);
	if (ret == -EAGAIN)
		return FIO_Q_BUSY;
	if (ret) {
		io_u->error = -ret;
		return FIO_Q_COMPLETED;
	}
	return FIO_Q_QUEUED;
}

static uint64_t ns_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Poll mode: run completions on this thread until @min are there; fio
 * may reap fewer than it has (max), so some may be there already. */
static void poll_events(struct thread_data *td, struct rnbd_data *d,
			unsigned int min, unsigned int max,
			const struct timespec *t)
{
	struct rnbd_fio_options *o = td->eo;
	uint64_t now, end = UINT64_MAX, spin_end;

	if (d->ndone >= max)
		return;
	if (d->ndone >= min)
		min = 0;        /* take what is ready, do not wait */
	now = ns_now();
	if (t)
		end = now + (uint64_t)t->tv_sec * 1000000000u +
		      (uint64_t)t->tv_nsec;
	spin_end = now + (uint64_t)o->busy_poll * 1000;
	do {
		int ret, to = -1;

		if (now < spin_end)
			to = 0;         /* rnbd_busy_poll */
		else if (t)
			to = now >= end ? 0
					: (int)((end - now + 999999) / 1000000);
		ret = rnbd_poll(d->sess, min ? to : 0);
		if (ret < 0) {
			log_err("fio: rnbd: poll: %s\n", rtrs_strerror(ret));
			return;
		}
		if (!min || d->ndone >= min)
			return;
		now = ns_now();
	} while (now < end);
}

static int eng_getevents(struct thread_data *td, unsigned int min,
			 unsigned int max, const struct timespec *t)
{
	struct rnbd_data *d = td->io_ops_data;
	struct rnbd_fio_options *o = td->eo;
	struct timespec dl;
	unsigned int n;

	if (o->poll) {
		poll_events(td, d, min, max, t);
	} else if (o->busy_poll && min) {
		/* wake-ups of an idle vCPU cost more than the round trip */
		uint64_t end = ns_now() + (uint64_t)o->busy_poll * 1000;

		while (__atomic_load_n(&d->ndone, __ATOMIC_ACQUIRE) < min &&
		       ns_now() < end)
			;
	}
	if (t) {
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += t->tv_sec;
		dl.tv_nsec += t->tv_nsec;
		if (dl.tv_nsec >= 1000000000L) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&d->lock);
	while (!o->poll && d->ndone < min) {
		if (!t)
			pthread_cond_wait(&d->cond, &d->lock);
		else if (pthread_cond_timedwait(&d->cond, &d->lock, &dl))
			break;
	}
	n = d->ndone < max ? d->ndone : max;
	memcpy(d->events, d->done, n * sizeof(*d->events));
	memmove(d->done, d->done + n, (d->ndone - n) * sizeof(*d->done));
	d->ndone -= n;
	pthread_mutex_unlock(&d->lock);
	return (int)n;
}

static struct io_u *eng_event(struct thread_data *td, int i)
{
	struct rnbd_data *d = td->io_ops_data;

	return d->events[i];
}

static int eng_open_file(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

static int eng_invalidate(struct thread_data *td, struct fio_file *f)
{
	(void)td;
	(void)f;
	return 0;
}

/* found by fio with dlsym("ioengine") */
struct ioengine_ops ioengine = {
	.name = "rnbd",
	.version = FIO_IOOPS_VERSION,
	.options = options,
	.option_struct_size = sizeof(struct rnbd_fio_options),
	.flags = FIO_DISKLESSIO | FIO_NOEXTEND,
	.setup = eng_setup,
	.init = eng_init,
	.cleanup = eng_cleanup,
	.queue = eng_queue,
	.getevents = eng_getevents,
	.event = eng_event,
	.open_file = eng_open_file,
	.close_file = eng_open_file,
	.invalidate = eng_invalidate,
};
