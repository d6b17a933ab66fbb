/*
 * The cc workload's input: a word-frequency counter with a hash table, a
 * worker pool and a few system interfaces, so that compiling it pulls in a
 * dozen system headers and gives the optimiser real work.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#define TABLE_MIN 64
#define MAX_WORD 64
#define WORKERS 4

struct entry {
	char *word;
	uint64_t hash;
	size_t count;
};

struct table {
	struct entry *slots;
	size_t cap;
	size_t len;
	pthread_mutex_t lock;
};

struct job {
	const char *text;
	size_t len;
	struct table *table;
};

static volatile sig_atomic_t stop_requested;

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_FAILURE);
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n);
	if (p == NULL)
		die("out of memory (%zu bytes)", n);
	return p;
}

static char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

/* FNV-1a, 64 bits. */
static uint64_t hash_bytes(const char *s, size_t n)
{
	uint64_t h = UINT64_C(14695981039346656037);
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= UINT64_C(1099511628211);
	}
	return h;
}

static void table_init(struct table *t)
{
	t->cap = TABLE_MIN;
	t->len = 0;
	t->slots = calloc(t->cap, sizeof(*t->slots));
	if (t->slots == NULL)
		die("out of memory");
	if (pthread_mutex_init(&t->lock, NULL) != 0)
		die("pthread_mutex_init: %s", strerror(errno));
}

static void table_free(struct table *t)
{
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].word);
	free(t->slots);
	pthread_mutex_destroy(&t->lock);
}

static struct entry *table_find(struct entry *slots, size_t cap, uint64_t h, const char *w, size_t n)
{
	size_t i = (size_t)h & (cap - 1);
	for (;;) {
		struct entry *e = &slots[i];
		if (e->word == NULL)
			return e;
		if (e->hash == h && strlen(e->word) == n && memcmp(e->word, w, n) == 0)
			return e;
		i = (i + 1) & (cap - 1);
	}
}

static void table_grow(struct table *t)
{
	size_t cap = t->cap * 2;
	struct entry *slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		die("out of memory");
	for (size_t i = 0; i < t->cap; i++) {
		struct entry *e = &t->slots[i];
		if (e->word == NULL)
			continue;
		*table_find(slots, cap, e->hash, e->word, strlen(e->word)) = *e;
	}
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
}

static void table_add(struct table *t, const char *w, size_t n)
{
	uint64_t h = hash_bytes(w, n);
	pthread_mutex_lock(&t->lock);
	if ((t->len + 1) * 4 > t->cap * 3)
		table_grow(t);
	struct entry *e = table_find(t->slots, t->cap, h, w, n);
	if (e->word == NULL) {
		e->word = xstrndup(w, n);
		e->hash = h;
		t->len++;
	}
	e->count++;
	pthread_mutex_unlock(&t->lock);
}

static void count_words(const char *s, size_t len, struct table *t)
{
	char buf[MAX_WORD];
	size_t n = 0;
	for (size_t i = 0; i <= len && !stop_requested; i++) {
		int c = i < len ? (unsigned char)s[i] : ' ';
		if (isalnum(c) && n < sizeof(buf)) {
			buf[n++] = (char)tolower(c);
			continue;
		}
		if (n > 0)
			table_add(t, buf, n);
		n = 0;
	}
}

static void *worker(void *arg)
{
	struct job *j = arg;
	count_words(j->text, j->len, j->table);
	return NULL;
}

static int by_count(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->word, y->word);
}

static size_t split_point(const char *s, size_t len, size_t at)
{
	while (at < len && isalnum((unsigned char)s[at]))
		at++;
	return at;
}

static void count_parallel(const char *s, size_t len, struct table *t)
{
	pthread_t tid[WORKERS];
	struct job jobs[WORKERS];
	size_t from = 0;
	for (int w = 0; w < WORKERS; w++) {
		size_t to = w == WORKERS - 1 ? len : split_point(s, len, len * (size_t)(w + 1) / WORKERS);
		if (to < from)
			to = from;
		jobs[w] = (struct job){ .text = s + from, .len = to - from, .table = t };
		if (pthread_create(&tid[w], NULL, worker, &jobs[w]) != 0)
			die("pthread_create: %s", strerror(errno));
		from = to;
	}
	for (int w = 0; w < WORKERS; w++)
		pthread_join(tid[w], NULL);
}

static char *read_all(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open %s: %s", path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) != 0)
		die("stat %s: %s", path, strerror(errno));
	size_t cap = st.st_size > 0 ? (size_t)st.st_size + 1 : 4096, n = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (buf == NULL)
				die("out of memory");
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	*len = n;
	return buf;
}

static double entropy(const struct table *t, size_t total)
{
	double h = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].word == NULL)
			continue;
		double p = (double)t->slots[i].count / (double)total;
		h -= p * log2(p);
	}
	return h;
}

static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, ms);
	return r > 0 && (p.revents & POLLIN);
}

static int listen_port(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(fd, 16) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void report(struct table *t, size_t top, const char *pattern)
{
	regex_t re;
	if (pattern != NULL && regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0)
		die("bad pattern %s", pattern);
	struct entry *all = xmalloc(t->len * sizeof(*all) + 1);
	size_t n = 0, total = 0;
	for (size_t i = 0; i < t->cap; i++) {
		if (t->slots[i].word == NULL)
			continue;
		if (pattern != NULL && regexec(&re, t->slots[i].word, 0, NULL, 0) != 0)
			continue;
		all[n++] = t->slots[i];
		total += t->slots[i].count;
	}
	qsort(all, n, sizeof(*all), by_count);
	for (size_t i = 0; i < n && i < top; i++)
		printf("%8zu  %s\n", all[i].count, all[i].word);
	printf("%zu distinct, %zu total, entropy %.3f bits\n", n, total, total ? entropy(t, total) : 0.0);
	free(all);
	if (pattern != NULL)
		regfree(&re);
}

int main(int argc, char **argv)
{
	const char *pattern = NULL;
	size_t top = 10;
	int port = -1;
	int opt;
	while ((opt = getopt(argc, argv, "n:p:l:")) != -1) {
		switch (opt) {
		case 'n': {
			char *end;
			unsigned long v = strtoul(optarg, &end, 10);
			if (*end != '\0' || v == 0 || v > INT_MAX)
				die("bad -n %s", optarg);
			top = v;
			break;
		}
		case 'p':
			pattern = optarg;
			break;
		case 'l':
			port = atoi(optarg);
			break;
		default:
			die("usage: %s [-n TOP] [-p REGEX] [-l PORT] FILE...", argv[0]);
		}
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct table t;
	table_init(&t);
	for (int i = optind; i < argc; i++) {
		size_t len;
		char *text = read_all(argv[i], &len);
		count_parallel(text, len, &t);
		free(text);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	report(&t, top, pattern);
	fprintf(stderr, "counted in %.3f ms\n",
		(double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);

	if (port > 0 && port <= UINT16_MAX) {
		int fd = listen_port((uint16_t)port);
		if (fd < 0)
			die("listen %d: %s", port, strerror(errno));
		while (!stop_requested && !wait_readable(fd, 100))
			;
		close(fd);
	}
	assert(t.len <= t.cap);
	table_free(&t);
	return 0;
}
