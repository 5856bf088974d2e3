// SPDX-License-Identifier: BSD-2-Clause OR GPL-2.0-only
/*
 * rnbd: the command line of librnbd.
 *
 *   rnbd list-exports -s ADDR:PORT[,...]
 *   rnbd info  -s ADDR:PORT[,...] -d NAME
 *   rnbd read  -s ... -d NAME [--offset N] [--length N] [-o FILE|-]
 *   rnbd write -s ... -d NAME [--offset N] [-i FILE|-] [--fua]
 *   rnbd copy  -s ... -d NAME (--to FILE | --from FILE) [--progress]
 *   rnbd bench -s ... -d NAME --rw randread|randwrite|read|write
 *              [--bs N] [--qd N] [--time SEC] [--json]
 *   rnbd map   -s ... -d NAME [--foreground] [--queues N]   (rnbd-map.c)
 *   rnbd unmap /dev/ublkbN
 *   rnbd list-mapped [--json]
 *
 * common: [--session NAME] [--provider P] [--ro] [--no-path-timeout MS]
 *
 * Exit status: 0 success, 1 an IO or protocol error, 2 bad usage, 3 (map)
 * the kernel has no ublk.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rnbd/rnbd.h"
#include "rnbd-map.h"

#define CHUNK (1u << 20)
/* how long IO waits for a path, e.g. while the server restarts */
#define NO_PATH_TIMEOUT_MS 30000u

static void usage(FILE *f)
{
	fprintf(f,
"usage: rnbd list-exports -s ADDR:PORT[,...]\n"
"       rnbd info  -s ADDR:PORT[,...] -d NAME\n"
"       rnbd read  -s ... -d NAME [--offset N] [--length N] [-o FILE|-]\n"
"       rnbd write -s ... -d NAME [--offset N] [-i FILE|-] [--fua]\n"
"       rnbd copy  -s ... -d NAME (--to FILE | --from FILE) [--progress]\n"
"       rnbd bench -s ... -d NAME --rw randread|randwrite|read|write\n"
"                  [--bs N] [--qd N] [--time SEC] [--json]\n"
"       rnbd map   -s ... -d NAME [--foreground] [--queues N]\n"
"       rnbd unmap /dev/ublkbN\n"
"       rnbd list-mapped [--json]\n"
"common: [--session NAME] [--provider P] [--ro] [--no-path-timeout MS]\n"
"        [--key-file FILE [--identity NAME]]\n"
"       rnbd --help | --version\n");
}

static void print_export(void *priv, const char *name, unsigned flags)
{
	(void)priv;
	printf("%s\t%s%s\n", name, flags & RNBD_EXPORT_RO ? "ro" : "rw",
	       flags & RNBD_EXPORT_DIR ? "\tdir" : "");
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(uint64_t done, uint64_t total, double t0, bool end)
{
	double el = now_s() - t0, mib = (double)done / 1048576.0;
	int w = 30, n = total ? (int)((double)done * w / (double)total) : w;

	fprintf(stderr, "\r[%.*s%*s] %5.1f%% %8.1f MiB %7.1f MiB/s", n,
		"##############################", w - n, "",
		total ? 100.0 * (double)done / (double)total : 100.0, mib,
		el > 0 ? mib / el : 0.0);
	if (end)
		fputc('\n', stderr);
}

static int write_all(int fd, const char *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

/* read up to @n bytes (less only at end of input) */
static ssize_t read_full(int fd, char *b, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, b + got, n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (!r)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static void past_end(const char *cmd, uint64_t off, uint64_t len,
		     uint64_t size)
{
	fprintf(stderr, "rnbd: %s: offset %llu + length %llu is past the end "
		"of the device (size %llu)\n", cmd, (unsigned long long)off,
		(unsigned long long)len, (unsigned long long)size);
}

static uint64_t roundup_lbs(uint64_t n, const struct rnbd_dev_info *in)
{
	uint64_t lbs = in->logical_block_size;

	return (n + lbs - 1) / lbs * lbs;
}

/* ---- bench: QD requests in flight for a while, fio-like numbers ---- */

#define LAT_BUCKETS 64

struct bench {
	struct rnbd_dev *dev;
	struct rnbd_dev_info in;
	int rw;                         /* 0 randread 1 randwrite 2 read 3 write */
	size_t bs;
	uint64_t span, seq_next, rng;
	double end;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned active;
	uint64_t ios, errors;
	int first_err;
	uint64_t lat[LAT_BUCKETS][8];   /* log2 buckets, 8 sub-buckets */
	double lat_max;
	char *mem;
};

struct slot {
	struct bench *b;
	char *buf;
	double start;
};

static void bench_next(struct slot *sl);

static void lat_add(struct bench *b, double us)
{
	uint64_t v = us < 1 ? 1 : (uint64_t)us;
	unsigned g = 63 - (unsigned)__builtin_clzll(v);
	unsigned sub = g >= 3 ? (unsigned)((v >> (g - 3)) & 7) : 0;

	b->lat[g][sub]++;
	if (us > b->lat_max)
		b->lat_max = us;
}

static double lat_pct(struct bench *b, double pct)
{
	uint64_t n = 0, want, seen = 0;

	for (int g = 0; g < LAT_BUCKETS; g++)
		for (int s = 0; s < 8; s++)
			n += b->lat[g][s];
	want = (uint64_t)((double)n * pct / 100.0);
	for (int g = 0; g < LAT_BUCKETS; g++)
		for (int s = 0; s < 8; s++) {
			seen += b->lat[g][s];
			if (n && seen > want)
				return g >= 3 ? (double)((8u + (unsigned)s) << (g - 3))
					      : (double)(1u << g);
		}
	return 0;
}

static void bench_done(void *priv, int status)
{
	struct slot *sl = priv;
	struct bench *b = sl->b;
	double t = now_s();

	pthread_mutex_lock(&b->lock);
	if (status && !b->errors++)
		b->first_err = status;
	else if (!status)
		b->ios++;
	lat_add(b, (t - sl->start) * 1e6);
	pthread_mutex_unlock(&b->lock);
	bench_next(sl);
}

static void bench_next(struct slot *sl)
{
	struct bench *b = sl->b;
	uint64_t blocks = b->span / b->bs, off;
	int ret;

	pthread_mutex_lock(&b->lock);
	if (now_s() >= b->end || b->errors) {
		if (--b->active == 0)
			pthread_cond_signal(&b->cond);
		pthread_mutex_unlock(&b->lock);
		return;
	}
	if (b->rw >= 2) {
		off = b->seq_next;
		b->seq_next = (b->seq_next + b->bs) % (blocks * b->bs);
	} else {
		b->rng ^= b->rng << 13;
		b->rng ^= b->rng >> 7;
		b->rng ^= b->rng << 17;
		off = (b->rng % blocks) * b->bs;
	}
	pthread_mutex_unlock(&b->lock);
	sl->start = now_s();
	ret = rnbd_submit(b->dev, b->rw & 1 ? RNBD_WRITE : RNBD_READ, off,
			  sl->buf, b->bs, 0, bench_done, sl);
	if (ret)
		bench_done(sl, ret);
}

static int bench(struct rnbd_dev *d, const struct rnbd_dev_info *in,
		 const char *rw, size_t bs, unsigned qd, double secs, bool json)
{
	static const char *const names[] = { "randread", "randwrite", "read",
					      "write" };
	struct bench b = { .dev = d, .in = *in, .bs = bs, .rng = 88172645463325252ull,
			   .lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER };
	struct slot *slots;
	double t0, el;
	int i;

	for (i = 0; i < 4 && strcmp(rw, names[i]); i++)
		;
	if (i == 4 || !bs || bs % in->logical_block_size || bs > in->max_io_size ||
	    !qd || secs <= 0 || in->size < bs) {
		fprintf(stderr, "rnbd bench: bad --rw, --bs, --qd or --time\n");
		return 2;
	}
	b.rw = i;
	b.span = in->size;
	b.mem = aligned_alloc(4096, ((size_t)qd * bs + 4095) & ~(size_t)4095);
	slots = calloc(qd, sizeof(*slots));
	if (!b.mem || !slots) {
		free(b.mem);
		free(slots);
		return 1;
	}
	memset(b.mem, 0x5a, (size_t)qd * bs);
	t0 = now_s();
	b.end = t0 + secs;
	b.active = qd;
	for (unsigned k = 0; k < qd; k++) {
		slots[k] = (struct slot){ &b, b.mem + (size_t)k * bs, 0 };
		bench_next(&slots[k]);
	}
	pthread_mutex_lock(&b.lock);
	while (b.active)
		pthread_cond_wait(&b.cond, &b.lock);
	pthread_mutex_unlock(&b.lock);
	el = now_s() - t0;
	if (json)
		printf("{\"rw\":\"%s\",\"bs\":%zu,\"qd\":%u,\"time_s\":%.3f,"
		       "\"iops\":%.1f,\"mib_s\":%.2f,\"lat_us\":{\"p50\":%.1f,"
		       "\"p99\":%.1f,\"max\":%.1f},\"errors\":%llu}\n",
		       names[b.rw], bs, qd, el, (double)b.ios / el,
		       (double)b.ios * (double)bs / 1048576.0 / el,
		       lat_pct(&b, 50), lat_pct(&b, 99), b.lat_max,
		       (unsigned long long)b.errors);
	else
		printf("%s bs=%zu qd=%u: %.0f IOPS, %.1f MiB/s, lat p50 %.0f us "
		       "p99 %.0f us max %.0f us, errors %llu\n", names[b.rw], bs,
		       qd, (double)b.ios / el,
		       (double)b.ios * (double)bs / 1048576.0 / el,
		       lat_pct(&b, 50), lat_pct(&b, 99), b.lat_max,
		       (unsigned long long)b.errors);
	if (b.errors)
		fprintf(stderr, "rnbd bench: %s\n", rnbd_strerror(b.first_err));
	free(b.mem);
	free(slots);
	return b.errors ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "device", required_argument, NULL, 'd' },
		{ "offset", required_argument, NULL, 'O' },
		{ "length", required_argument, NULL, 'L' },
		{ "out", required_argument, NULL, 'o' },
		{ "in", required_argument, NULL, 'i' },
		{ "to", required_argument, NULL, 'T' },
		{ "from", required_argument, NULL, 'F' },
		{ "fua", no_argument, NULL, 'u' },
		{ "ro", no_argument, NULL, 'r' },
		{ "progress", no_argument, NULL, 'P' },
		{ "session", required_argument, NULL, 'n' },
		{ "provider", required_argument, NULL, 'p' },
		{ "rw", required_argument, NULL, 'w' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "time", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "no-path-timeout", required_argument, NULL, 'N' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "key-file", required_argument, NULL, 400 },
		{ "identity", required_argument, NULL, 401 },
		{ "queues", required_argument, NULL, 402 },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *rw = NULL;
	uint64_t bs = 4096;
	unsigned qd = 32, queues = 0;
	double secs = 5;
	bool json = false;
	struct rtrs_path_addr paths[8];
	struct rtrs_clt_attr attr;
	struct rtrs_auth auth = { sizeof(auth), NULL, NULL };
	struct rnbd_sess *s = NULL;
	struct rnbd_dev *d = NULL;
	struct rnbd_dev_info in;
	const char *cmd, *dev = NULL, *out = NULL, *inp = NULL, *to = NULL,
		   *from = NULL;
	char *server = NULL, name[64], *save = NULL, *buf = NULL;
	uint64_t off = 0, len = UINT64_MAX, done = 0, npt;
	bool fua = false, ro = false, prog = false, refused = false, fg = false;
	const char *lfile = NULL;       /* ret is an error of this local file */
	size_t npaths = 0;
	int c, fd = -1, ret = 0, rc = 1;
	double t0;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version")) {
		printf("rnbd %s\n", RTRS_VERSION_STRING);
		return 0;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "unmap"))
		return rnbd_unmap_main(argc, argv);
	if (!strcmp(cmd, "list-mapped"))
		return rnbd_list_mapped_main(argc, argv);
	rtrs_clt_attr_init(&attr);
	attr.no_path_timeout_ms = NO_PATH_TIMEOUT_MS;
	snprintf(name, sizeof(name), "rnbd-%d", (int)getpid());
	optind = 2;
	while ((c = getopt_long(argc, argv, "s:d:o:i:n:p:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'd': dev = optarg; break;
		case 'O': if (parse_u64(optarg, &off)) goto bad; break;
		case 'L': if (parse_u64(optarg, &len)) goto bad; break;
		case 'o': out = optarg; break;
		case 'i': inp = optarg; break;
		case 'T': to = optarg; break;
		case 'F': from = optarg; break;
		case 'u': fua = true; break;
		case 'r': ro = true; break;
		case 'P': prog = true; break;
		case 'n': snprintf(name, sizeof(name), "%s", optarg); break;
		case 'p': attr.provider = optarg; break;
		case 'w': rw = optarg; break;
		case 400: auth.key_file = optarg; break;
		case 401: auth.identity = optarg; break;
		case 402:
			if (parse_u64(optarg, &npt) || !npt || npt > 16)
				goto bad;
			queues = (unsigned)npt;
			break;
		case 'b': if (parse_u64(optarg, &bs)) goto bad; break;
		case 'q': qd = (unsigned)atoi(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'j': json = true; break;
		case 'f': fg = true; break;
		case 'N':
			if (parse_u64(optarg, &npt) || npt > UINT32_MAX)
				goto bad;
			attr.no_path_timeout_ms = (unsigned int)npt;
			break;
		case 'h': usage(stdout); return 0;
		default: goto bad;
		}
	}
	if (!server || (!dev && strcmp(cmd, "list-exports")))
		goto bad;
	for (char *t = strtok_r(server, ",", &save); t && npaths < 8;
	     t = strtok_r(NULL, ",", &save))
		paths[npaths++] = (struct rtrs_path_addr){ NULL, t };
	if (strcmp(cmd, "info") && strcmp(cmd, "read") && strcmp(cmd, "write") &&
	    strcmp(cmd, "copy") && strcmp(cmd, "bench") &&
	    strcmp(cmd, "list-exports") && strcmp(cmd, "map"))
		goto bad;
	if (auth.identity && !auth.key_file)
		goto bad;
	if (!strcmp(cmd, "map"))
		return rnbd_map_main(&(struct rnbd_map_opts){
			.paths = paths, .npaths = npaths, .attr = &attr,
			.sessname = name, .device = dev,
			.auth = auth.key_file ? &auth : NULL, .ro = ro,
			.foreground = fg, .queues = queues });
	if (!strcmp(cmd, "bench") && !rw)
		goto bad;
	if (!strcmp(cmd, "copy") && !to == !from)
		goto bad;
	ret = rnbd_sess_open_auth(name, paths, npaths, &attr,
				  auth.key_file ? &auth : NULL, &s);
	if (ret) {
		fprintf(stderr, "rnbd: connect: %s\n", rtrs_strerror(ret));
		return 1;
	}
	if (!strcmp(cmd, "list-exports")) {
		ret = rnbd_list_exports(s, print_export, NULL);
		if (ret < 0)
			fprintf(stderr, "rnbd: list-exports: %s\n",
				rnbd_strerror(ret));
		rc = ret < 0;
		goto out;
	}
	ro = ro || !strcmp(cmd, "info") || !strcmp(cmd, "read") || to ||
	     (rw && !strstr(rw, "write"));
	ret = rnbd_dev_open(s, dev, ro ? RNBD_ACCESS_RO : RNBD_ACCESS_RW, &d);
	if (ret) {
		fprintf(stderr, "rnbd: open %s: %s\n", dev, rnbd_strerror(ret));
		goto out;
	}
	rnbd_dev_info(d, &in);
	if (!strcmp(cmd, "info")) {
		printf("device %s\nsize %llu\nlogical_block_size %u\n"
		       "physical_block_size %u\nmax_io_size %u\n"
		       "max_discard_size %u\nmax_write_zeroes_size %u\n"
		       "write_cache %s\nfua %s\n", dev,
		       (unsigned long long)in.size, in.logical_block_size,
		       in.physical_block_size, in.max_io_size,
		       in.max_discard_size, in.max_write_zeroes_size,
		       in.write_cache ? "yes" : "no", in.fua ? "yes" : "no");
		rc = 0;
		goto out;
	}
	if (!strcmp(cmd, "bench")) {
		rc = bench(d, &in, rw, (size_t)bs, qd, secs, json);
		goto out;
	}
	buf = aligned_alloc(4096, CHUNK);
	if (!buf || off > in.size || off % in.logical_block_size) {
		fprintf(stderr, "rnbd: %s\n", !buf ? "out of memory"
			: off > in.size ? "offset past the end"
					: "offset not a multiple of the block size");
		goto out;
	}
	if (!strcmp(cmd, "read") || to) {
		const char *dst = to ? to : out;

		if (len == UINT64_MAX)
			len = in.size - off;
		/* all or nothing: no output for a range past the end */
		if (len > in.size - off) {
			past_end(cmd, off, len, in.size);
			goto out;
		}
		fd = !dst || !strcmp(dst, "-") ? 1
			: open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			fprintf(stderr, "rnbd: %s: %s\n", dst, strerror(errno));
			goto out;
		}
		t0 = now_s();
		while (done < len) {
			size_t n = len - done > CHUNK ? CHUNK : (size_t)(len - done);
			/* the device reads whole blocks; the output gets @n */
			size_t rn = (n + in.logical_block_size - 1) &
				    ~(size_t)(in.logical_block_size - 1);

			ret = rnbd_pread(d, buf, rn, off + done);
			if (!ret) {
				ret = write_all(fd, buf, n);
				lfile = ret ? (dst ? dst : "-") : NULL;
			}
			if (ret)
				break;
			done += n;
			if (prog)
				progress(done, len, t0, false);
		}
	} else {
		const char *src = from ? from : inp;
		struct stat st;

		fd = !src || !strcmp(src, "-") ? 0
			: open(src, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "rnbd: %s: %s\n", src, strerror(errno));
			goto out;
		}
		len = 0;
		if (!fstat(fd, &st) && S_ISREG(st.st_mode)) {
			off_t pos = lseek(fd, 0, SEEK_CUR);

			len = (uint64_t)st.st_size -
			      (pos > 0 && pos <= st.st_size ? (uint64_t)pos : 0);
		}
		/* a file that does not fit is refused before any write (the
		 * last block padded); a stream is when it reaches the end */
		if (len && roundup_lbs(len, &in) > in.size - off) {
			past_end(cmd, off, roundup_lbs(len, &in), in.size);
			goto out;
		}
		t0 = now_s();
		for (;;) {
			ssize_t n = read_full(fd, buf, CHUNK);

			if (n < 0) {
				ret = (int)n;
				lfile = src ? src : "-";
				break;
			}
			if (!n)
				break;
			/* a short last piece is padded to the block size */
			if ((size_t)n % in.logical_block_size) {
				size_t pad = in.logical_block_size -
					     (size_t)n % in.logical_block_size;

				memset(buf + n, 0, pad);
				n += (ssize_t)pad;
			}
			if ((uint64_t)n > in.size - off - done) {
				past_end(cmd, off, done + (uint64_t)n, in.size);
				refused = true;
				break;
			}
			ret = rnbd_pwrite(d, buf, (size_t)n, off + done,
					  fua ? RNBD_FUA : 0);
			if (ret)
				break;
			done += (uint64_t)n;
			if (prog)
				progress(done, len, t0, false);
		}
		if (!ret)
			ret = rnbd_flush(d);
	}
	if (prog)
		progress(done, len, t0, true);
	if (ret && lfile)
		fprintf(stderr, "rnbd: %s: %s\n", lfile, strerror(-ret));
	else if (ret)
		fprintf(stderr, "rnbd: %s at offset %llu: %s\n", cmd,
			(unsigned long long)(off + done), rnbd_strerror(ret));
	else if (!refused)
		rc = 0;
out:
	if (fd > 2)
		close(fd);
	free(buf);
	if (d)
		rnbd_dev_close(d);
	rnbd_sess_close(s);
	return rc;
bad:
	usage(stderr);
	return 2;
}
