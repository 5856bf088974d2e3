// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd map: an rnbd device as the block device /dev/ublkbN, served from
 * user space through the kernel's ublk driver (Linux >= 6.0,
 * CONFIG_BLK_DEV_UBLK) and io_uring; rnbd unmap, rnbd list-mapped.
 *
 * The ublk protocol (include/uapi/linux/ublk_cmd.h): control commands go
 * to /dev/ublk-control as io_uring URING_CMDs in 128-byte SQEs (ADD_DEV,
 * SET_PARAMS, START_DEV, STOP_DEV, DEL_DEV); the IO of each hardware
 * queue of the device /dev/ublkcN is served by that queue's thread
 * (rnbd-map-q.c).
 *
 * Threads: the main thread issues the control commands and then waits
 * for SIGTERM/SIGINT/SIGHUP; one thread per queue. Queues: one per IO
 * connection of a librtrs path (the io_cons attr, by default the CPUs
 * this process may run on), at most QUEUES_MAX, or --queues; tags per
 * queue: the session's permits shared out among them, at most QD_MAX.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <linux/ublk_cmd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rnbd-map-q.h"
#include "rnbd-map.h"

#define QD_MAX 64u
#define QUEUES_MAX 16u
#define IO_BUF_MAX (512u << 10)
#define CTRL_DEV "/dev/ublk-control"

static const char *run_dir(void)
{
	const char *d = getenv("RNBD_RUN_DIR");

	return d && *d ? d : "/run/rnbd";
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int ctrl_cmd(struct io_uring *r, int fd, unsigned op, uint32_t dev_id,
		    void *buf, size_t len, uint64_t data0)
{
	struct ublksrv_ctrl_cmd c = {
		.dev_id = dev_id, .queue_id = (uint16_t)-1, .len = (uint16_t)len,
		.addr = (uint64_t)(uintptr_t)buf, .data = { data0, 0 },
	};
	struct io_uring_sqe *sqe = io_uring_get_sqe(r);
	struct io_uring_cqe *cqe;
	int ret;

	if (!sqe)
		return -EBUSY;
	rnbd_map_uring_cmd(sqe, fd, op, &c, sizeof(c), op);
	ret = io_uring_submit(r);
	if (ret < 0)
		return ret;
	do
		ret = io_uring_wait_cqe(r, &cqe);
	while (ret == -EINTR);
	if (ret)
		return ret;
	ret = cqe->res;
	io_uring_cqe_seen(r, cqe);
	return ret;
}

static int ctrl_open(int *fd)
{
	*fd = open(CTRL_DEV, O_RDWR | O_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

/* what the user reads when the kernel has no ublk */
static int no_ublk(int err)
{
	fprintf(stderr, "rnbd map: %s: %s: this kernel has no ublk (Linux >= "
		"6.0 with CONFIG_BLK_DEV_UBLK; try `modprobe ublk_drv`)\n",
		CTRL_DEV, strerror(-err));
	return RNBD_EXIT_NO_UBLK;
}

/* ---- the state files: RUN_DIR/ublkbN ---- */

struct state {
	unsigned id;
	long pid;
	int ro;
	char device[256], session[128], servers[512];
};

static void state_path(char *p, size_t n, unsigned id)
{
	snprintf(p, n, "%s/ublkb%u", run_dir(), id);
}

static int state_write(const struct state *s)
{
	char p[4096], tmp[4200];
	FILE *f;

	if (mkdir(run_dir(), 0755) && errno != EEXIST)
		return -errno;
	state_path(p, sizeof(p), s->id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", p);
	f = fopen(tmp, "we");
	if (!f)
		return -errno;
	fprintf(f, "pid=%ld\ndev=/dev/ublkb%u\ndevice=%s\nsession=%s\n"
		"servers=%s\naccess=%s\n", s->pid, s->id, s->device, s->session,
		s->servers, s->ro ? "ro" : "rw");
	if (fclose(f) || rename(tmp, p)) {
		unlink(tmp);
		return -errno;
	}
	return 0;
}

static int state_read(unsigned id, struct state *s)
{
	char p[4096], line[1024];
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->id = id;
	state_path(p, sizeof(p), id);
	f = fopen(p, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		char *v = strchr(line, '=');

		if (!v)
			continue;
		*v++ = 0;
		v[strcspn(v, "\n")] = 0;
		if (!strcmp(line, "pid"))
			s->pid = strtol(v, NULL, 10);
		else if (!strcmp(line, "device"))
			snprintf(s->device, sizeof(s->device), "%s", v);
		else if (!strcmp(line, "session"))
			snprintf(s->session, sizeof(s->session), "%s", v);
		else if (!strcmp(line, "servers"))
			snprintf(s->servers, sizeof(s->servers), "%s", v);
		else if (!strcmp(line, "access"))
			s->ro = !strcmp(v, "ro");
	}
	fclose(f);
	return s->pid > 0 ? 0 : -EINVAL;
}

static void state_remove(unsigned id)
{
	char p[4096];

	state_path(p, sizeof(p), id);
	unlink(p);
}

/* the daemon of @s still runs: process @pid exists, is an rnbd, and is
 * not a zombie (a daemon that died and was not reaped yet) */
static bool state_alive(const struct state *s)
{
	char p[64], buf[256], *comm, *end;
	size_t n;
	FILE *f;

	snprintf(p, sizeof(p), "/proc/%ld/stat", s->pid);
	f = fopen(p, "re");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	/* "PID (COMM) STATE ...": COMM may hold anything, ')' included */
	comm = strchr(buf, '(');
	end = strrchr(buf, ')');
	if (!comm || !end || end - comm != 5 || strncmp(comm, "(rnbd)", 6))
		return false;
	return end[1] == ' ' && end[2] && !strchr("ZXx", end[2]);
}

/* ---- map ---- */

static unsigned ilog2(uint32_t v)
{
	return 31 - (unsigned)__builtin_clz(v);
}

static int set_params(struct map *m, bool ro)
{
	const struct rnbd_dev_info *in = &m->in;
	struct ublk_params p = {
		.len = sizeof(p),
		.types = UBLK_PARAM_TYPE_BASIC,
	};
	unsigned lbs = ilog2(in->logical_block_size);
	unsigned pbs = in->physical_block_size ?
		       ilog2(in->physical_block_size) : lbs;

	if (pbs < lbs)
		pbs = lbs;
	p.basic.attrs = (ro ? UBLK_ATTR_READ_ONLY : 0) |
			(in->write_cache ? UBLK_ATTR_VOLATILE_CACHE : 0) |
			(in->fua ? UBLK_ATTR_FUA : 0);
	p.basic.logical_bs_shift = (uint8_t)lbs;
	p.basic.physical_bs_shift = (uint8_t)pbs;
	p.basic.io_min_shift = (uint8_t)pbs;
	p.basic.io_opt_shift = (uint8_t)pbs;
	p.basic.max_sectors = (uint32_t)(m->buf_size >> 9);
	p.basic.dev_sectors = in->size >> 9;
	if (in->max_discard_size || in->max_write_zeroes_size) {
		p.types |= UBLK_PARAM_TYPE_DISCARD;
		p.discard.discard_granularity = in->discard_granularity ?
			in->discard_granularity : in->logical_block_size;
		p.discard.max_discard_sectors = in->max_discard_size >> 9;
		p.discard.max_write_zeroes_sectors =
			in->max_write_zeroes_size >> 9;
		p.discard.max_discard_segments = 1;
	}
	return ctrl_cmd(&m->ctrl, m->ctrl_fd, UBLK_CMD_SET_PARAMS, m->dev_id,
			&p, sizeof(p), 0);
}

/* wait up to 10 s for devtmpfs to show @path */
static int wait_node(const char *path)
{
	struct stat st;

	for (int i = 0; i < 1000; i++) {
		if (!stat(path, &st))
			return 0;
		if (errno != ENOENT)
			return -errno;
		sleep_ms(10);
	}
	return -ENOENT;
}

/* everything set up so far, undone in reverse */
static void teardown(struct map *m)
{
	bool fetched = false;

	atomic_store(&m->stopping, true);
	for (unsigned i = 0; m->qs && i < m->nq; i++)
		fetched |= m->qs[i].fetched;
	/* it aborts every tag fetched, started device or not: the queue
	 * threads end */
	if (fetched)
		ctrl_cmd(&m->ctrl, m->ctrl_fd, UBLK_CMD_STOP_DEV, m->dev_id,
			 NULL, 0, 0);
	for (unsigned i = 0; m->qs && i < m->nq; i++)
		rnbd_mapq_free(&m->qs[i]);
	free(m->qs);
	if (m->cdev_fd >= 0)
		close(m->cdev_fd);
	/* DEL_DEV waits until the char device is closed */
	if (m->added)
		ctrl_cmd(&m->ctrl, m->ctrl_fd, UBLK_CMD_DEL_DEV, m->dev_id,
			 NULL, 0, 0);
	if (m->ctrl_ring)
		io_uring_queue_exit(&m->ctrl);
	if (m->dev)
		rnbd_dev_close(m->dev);
	if (m->sess)
		rnbd_sess_close(m->sess);
	close(m->ctrl_fd);
}

/* what the map daemon tells the `rnbd map` that started it */
static void report(int fd, const char *msg)
{
	if (fd < 0)
		return;
	if (write(fd, msg, strlen(msg)) < 0)
		fprintf(stderr, "rnbd map: report: %s\n", strerror(errno));
	close(fd);
}

static int serve(const struct rnbd_map_opts *o, int ctrl_fd, int ready_fd)
{
	struct map mm = { .ctrl_fd = ctrl_fd, .cdev_fd = -1 }, *m = &mm;
	struct rtrs_clt_attr attr = *o->attr;
	struct ublksrv_ctrl_dev_info info = { 0 };
	struct rtrs_attrs ra;
	struct state st = { 0 };
	sigset_t sigs;
	char path[64];
	int ret, sig, rc = 1;
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	/* before any thread starts: all of them inherit it */
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);

	/* a queue per IO connection: --queues (1 to QUEUES_MAX, rnbd.c)
	 * sets both */
	m->nq = o->queues ? o->queues
			  : attr.io_cons ? attr.io_cons : online_cpus();
	if (m->nq > QUEUES_MAX)
		m->nq = QUEUES_MAX;
	attr.io_cons = m->nq;
	ret = rnbd_sess_open_auth(o->sessname, o->paths, o->npaths, &attr,
				  o->auth, &m->sess);
	if (ret) {
		fprintf(stderr, "rnbd map: connect: %s\n", rtrs_strerror(ret));
		goto out;
	}
	ret = rnbd_dev_open(m->sess, o->device,
			    o->ro ? RNBD_ACCESS_RO : RNBD_ACCESS_RW, &m->dev);
	if (ret) {
		fprintf(stderr, "rnbd map: open %s: %s\n", o->device,
			rnbd_strerror(ret));
		goto out;
	}
	rnbd_dev_info(m->dev, &m->in);
	/* the session's permits shared out among the queues */
	m->qd = QD_MAX;
	if (!rtrs_clt_query(rnbd_sess_rtrs(m->sess), &ra) && ra.queue_depth &&
	    ra.queue_depth / m->nq < m->qd)
		m->qd = ra.queue_depth / m->nq ? ra.queue_depth / m->nq : 1;
	m->buf_size = (m->in.max_io_size < IO_BUF_MAX ? m->in.max_io_size
						      : IO_BUF_MAX) & ~(pg - 1);
	if (m->buf_size < m->in.logical_block_size || m->in.size < 512 ||
	    m->in.logical_block_size < 512 ||
	    m->in.logical_block_size > pg ||
	    (m->in.logical_block_size & (m->in.logical_block_size - 1))) {
		fprintf(stderr, "rnbd map: %s: a block size or IO size ublk "
			"cannot take (block %u, max IO %u)\n", o->device,
			m->in.logical_block_size, m->in.max_io_size);
		goto out;
	}

	ret = io_uring_queue_init(4, &m->ctrl, IORING_SETUP_SQE128);
	if (ret) {
		fprintf(stderr, "rnbd map: io_uring with 128-byte SQEs: %s\n",
			strerror(-ret));
		rc = ret == -EINVAL ? no_ublk(-EOPNOTSUPP) : 1;
		goto out;
	}
	m->ctrl_ring = true;
	info.nr_hw_queues = (uint16_t)m->nq;
	info.queue_depth = (uint16_t)m->qd;
	info.max_io_buf_bytes = (uint32_t)m->buf_size;
	info.dev_id = UINT32_MAX;       /* any free number */
	info.ublksrv_pid = getpid();
	ret = ctrl_cmd(&m->ctrl, ctrl_fd, UBLK_CMD_ADD_DEV, UINT32_MAX, &info,
		       sizeof(info), 0);
	if (ret < 0) {
		fprintf(stderr, "rnbd map: ublk ADD_DEV: %s%s\n",
			strerror(-ret), ret == -EPERM ?
			" (needs CAP_SYS_ADMIN)" : "");
		rc = ret == -EOPNOTSUPP || ret == -EINVAL ?
			no_ublk(-EOPNOTSUPP) : 1;
		goto out;
	}
	m->added = true;
	m->dev_id = info.dev_id;
	m->buf_size = info.max_io_buf_bytes;
	ret = set_params(m, o->ro);
	if (ret < 0) {
		fprintf(stderr, "rnbd map: ublk SET_PARAMS: %s\n",
			strerror(-ret));
		goto out;
	}
	snprintf(path, sizeof(path), "/dev/ublkc%u", m->dev_id);
	ret = wait_node(path);
	if (!ret) {
		m->cdev_fd = open(path, O_RDWR | O_CLOEXEC);
		ret = m->cdev_fd < 0 ? -errno : 0;
	}
	if (ret) {
		fprintf(stderr, "rnbd map: %s: %s\n", path, strerror(-ret));
		goto out;
	}
	m->qs = calloc(m->nq, sizeof(*m->qs));
	if (!m->qs) {
		fprintf(stderr, "rnbd map: out of memory\n");
		goto out;
	}
	for (unsigned i = 0; i < m->nq; i++) {
		ret = rnbd_mapq_init(m, i);
		if (!ret)
			ret = rnbd_mapq_start(&m->qs[i]);
		if (ret) {
			fprintf(stderr, "rnbd map: queue %u: %s\n", i,
				strerror(-ret));
			goto out;
		}
	}
	ret = ctrl_cmd(&m->ctrl, ctrl_fd, UBLK_CMD_START_DEV, m->dev_id, NULL,
		       0, (uint64_t)getpid());
	if (ret < 0) {
		fprintf(stderr, "rnbd map: ublk START_DEV: %s\n",
			strerror(-ret));
		goto out;
	}
	snprintf(path, sizeof(path), "/dev/ublkb%u", m->dev_id);
	ret = wait_node(path);
	if (ret) {
		fprintf(stderr, "rnbd map: %s: %s\n", path, strerror(-ret));
		goto out;
	}
	st.id = m->dev_id;
	st.pid = getpid();
	st.ro = o->ro;
	snprintf(st.device, sizeof(st.device), "%s", o->device);
	snprintf(st.session, sizeof(st.session), "%s", o->sessname);
	for (size_t i = 0, n = 0; i < o->npaths && n < sizeof(st.servers); i++)
		n += (size_t)snprintf(st.servers + n, sizeof(st.servers) - n,
				      "%s%s", i ? "," : "", o->paths[i].dst);
	ret = state_write(&st);
	if (ret) {
		st.pid = 0;
		fprintf(stderr, "rnbd map: %s: %s\n", run_dir(),
			strerror(-ret));
		goto out;
	}
	if (ready_fd >= 0) {
		char msg[80];
		int nul = open("/dev/null", O_RDWR | O_CLOEXEC);

		snprintf(msg, sizeof(msg), "%s\n", path);
		report(ready_fd, msg);
		ready_fd = -1;
		if (nul >= 0) {
			dup2(nul, 0);
			dup2(nul, 1);
			dup2(nul, 2);
			close(nul);
		}
	} else {
		printf("%s\n", path);
		fflush(stdout);
	}
	do
		sig = sigwaitinfo(&sigs, NULL);
	while (sig < 0 && errno == EINTR);
	rc = 0;
out:
	report(ready_fd, "");
	teardown(m);
	/* last: a daemon that dies in its teardown leaves the file, and
	 * unmap deletes what is left */
	if (st.pid)
		state_remove(m->dev_id);
	return rc;
}

int rnbd_map_main(const struct rnbd_map_opts *o)
{
	int ctrl_fd, ready[2], ret;
	char line[64];
	ssize_t n = 0, r;
	pid_t pid;

	ret = ctrl_open(&ctrl_fd);
	if (ret == -ENOENT || ret == -ENODEV || ret == -ENXIO)
		return no_ublk(ret);
	if (ret) {
		fprintf(stderr, "rnbd map: %s: %s\n", CTRL_DEV, strerror(-ret));
		return 1;
	}
	if (o->foreground)
		return serve(o, ctrl_fd, -1);
	/* the daemon forks before any thread exists; it tells us the
	 * device, or nothing when it failed (it said why on stderr) */
	if (pipe2(ready, O_CLOEXEC)) {
		fprintf(stderr, "rnbd map: pipe: %s\n", strerror(errno));
		close(ctrl_fd);
		return 1;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "rnbd map: fork: %s\n", strerror(errno));
		close(ready[0]);
		close(ready[1]);
		close(ctrl_fd);
		return 1;
	}
	if (!pid) {
		close(ready[0]);
		setsid();
		if (chdir("/"))
			_exit(1);
		/* exit(), not _exit(): stdio was flushed before the fork, and
		 * the sanitizers' leak check runs at exit */
		exit(serve(o, ctrl_fd, ready[1]));
	}
	close(ready[1]);
	close(ctrl_fd);
	while (n < (ssize_t)sizeof(line) - 1 &&
	       ((r = read(ready[0], line + n, sizeof(line) - 1 - (size_t)n)) > 0 ||
		(r < 0 && errno == EINTR)))
		n += r > 0 ? r : 0;
	close(ready[0]);
	line[n] = 0;
	if (n > 0 && line[n - 1] == '\n') {
		fputs(line, stdout);
		return 0;
	}
	while (waitpid(pid, &ret, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(ret) && WEXITSTATUS(ret) ? WEXITSTATUS(ret) : 1;
}

/* ---- unmap, list-mapped ---- */

/* /dev/ublkbN, ublkbN or N */
static int parse_dev(const char *s, unsigned *id)
{
	char *end;
	unsigned long v;

	if (!strncmp(s, "/dev/", 5))
		s += 5;
	if (!strncmp(s, "ublkb", 5))
		s += 5;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v > INT32_MAX)
		return -EINVAL;
	*id = (unsigned)v;
	return 0;
}

/* the daemon is gone: delete its device ourselves */
static int unmap_orphan(unsigned id)
{
	struct io_uring r;
	int fd, ret;

	ret = ctrl_open(&fd);
	if (ret == -ENOENT || ret == -ENODEV || ret == -ENXIO)
		return 0;       /* no ublk (any more): no device either */
	if (ret)
		return ret;
	ret = io_uring_queue_init(4, &r, IORING_SETUP_SQE128);
	if (!ret) {
		ctrl_cmd(&r, fd, UBLK_CMD_STOP_DEV, id, NULL, 0, 0);
		ret = ctrl_cmd(&r, fd, UBLK_CMD_DEL_DEV, id, NULL, 0, 0);
		io_uring_queue_exit(&r);
	}
	close(fd);
	return ret == -ENODEV ? 0 : ret;
}

int rnbd_unmap_main(int argc, char **argv)
{
	struct state s;
	unsigned id;
	int ret;

	if (argc != 3 || parse_dev(argv[2], &id)) {
		fprintf(stderr, "usage: rnbd unmap /dev/ublkbN\n");
		return 2;
	}
	ret = state_read(id, &s);
	if (ret) {
		fprintf(stderr, "rnbd unmap: /dev/ublkb%u: not mapped by rnbd "
			"(%s/ublkb%u: %s)\n", id, run_dir(), id, strerror(-ret));
		return 1;
	}
	if (state_alive(&s)) {
		if (kill((pid_t)s.pid, SIGTERM)) {
			fprintf(stderr, "rnbd unmap: kill %ld: %s\n", s.pid,
				strerror(errno));
			return 1;
		}
		/* it stops the device (the kernel drains it), deletes it,
		 * closes the device and the session, removes the state file,
		 * exits */
		for (int i = 0; i < 6000 && state_alive(&s); i++)
			sleep_ms(50);
		if (state_alive(&s)) {
			fprintf(stderr, "rnbd unmap: daemon %ld did not exit in "
				"300 s\n", s.pid);
			return 1;
		}
		if (state_read(id, &s))
			return 0;
	}
	/* the daemon is gone and left its device: killed, or it died */
	ret = unmap_orphan(id);
	if (ret) {
		fprintf(stderr, "rnbd unmap: /dev/ublkb%u: its daemon %ld is "
			"gone, and deleting the device failed: %s\n", id, s.pid,
			strerror(-ret));
		return 1;
	}
	state_remove(id);
	return 0;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

int rnbd_list_mapped_main(int argc, char **argv)
{
	bool json = argc == 3 && !strcmp(argv[2], "--json");
	struct dirent *e;
	DIR *d;
	int n = 0;

	if (argc > 3 || (argc == 3 && !json)) {
		fprintf(stderr, "usage: rnbd list-mapped [--json]\n");
		return 2;
	}
	d = opendir(run_dir());
	if (json)
		putchar('[');
	while (d && (e = readdir(d))) {
		struct state s;
		unsigned id;
		bool alive;

		if (strncmp(e->d_name, "ublkb", 5) || parse_dev(e->d_name, &id) ||
		    state_read(id, &s))
			continue;
		alive = state_alive(&s);
		if (json) {
			printf("%s{\"dev\":\"/dev/ublkb%u\",\"device\":",
			       n ? "," : "", id);
			json_str(s.device);
			printf(",\"servers\":");
			json_str(s.servers);
			printf(",\"session\":");
			json_str(s.session);
			printf(",\"access\":\"%s\",\"pid\":%ld,\"alive\":%s}",
			       s.ro ? "ro" : "rw", s.pid,
			       alive ? "true" : "false");
		} else {
			printf("/dev/ublkb%u\t%s\t%s\t%s\tpid %ld%s\n", id,
			       s.device, s.servers, s.ro ? "ro" : "rw", s.pid,
			       alive ? "" : "\tdead");
		}
		n++;
	}
	if (json)
		printf("]\n");
	if (d)
		closedir(d);
	return 0;
}
