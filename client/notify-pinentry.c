/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "notify-pinentry.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hex.h"
#include "macro.h"

/* Assuan lines are at most 1000 bytes; a buffer of a page holds several. */
#define LINE_BUFFER_SIZE 4096
#define ASSUAN_LINE_MAX 1000
#define PINENTRY_TIMEOUT_USEC (10ULL * 60 * 1000000)
/* GPG_ERR_CANCELED (99) in the low 16 bits of an Assuan error code. */
#define GPG_ERR_CANCELED 99
#define GPG_ERR_CODE_MASK 0xffff

extern char **environ;

struct Pinentry {
	sd_event_source *io, *timer;
	pid_t pid;
	int to_child, from_child;
	char **commands; /* sent one at a time, each waiting for its OK */
	size_t n_commands, next;
	/* The read buffer sees the PIN's D line: locked and wiped like a Pin. */
	char *buffer;
	size_t filled;
	Pin *pin;
	bool greeted, got_pin;
	PinentryDoneFn done;
	void *userdata;
};

char *assuan_escape(const char *s, size_t max)
{
	char *out = malloc(max + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		bool escape = *c < 0x20 || *c == '%' || *c == 0x7f;
		size_t need = escape ? 3 : 1;

		/* Do not cut a UTF-8 character: find its whole length. */
		if (*c >= 0xc0) {
			need = 1;
			while ((c[need] & 0xc0) == 0x80)
				need++;
		}
		if ((size_t)(p - out) + need > max)
			break;
		if (escape) {
			p += sprintf(p, "%%%02X", *c);
		} else {
			memcpy(p, c, need);
			p += need;
			c += need - 1;
		}
	}
	*p = '\0';
	return out;
}

int assuan_decode_pin(const char *data, size_t size, Pin *pin)
{
	size_t n = 0;

	explicit_bzero(pin->data, PIN_MAX);
	pin->size = 0;
	for (size_t i = 0; i < size; i++) {
		char c = data[i];

		if (c == '%') {
			int hi = i + 2 < size ? hex_digit(data[i + 1]) : -1;
			int lo = hi >= 0 ? hex_digit(data[i + 2]) : -1;
			if (lo < 0)
				goto bad;
			c = (char)(hi << 4 | lo);
			i += 2;
		}
		/* A PIN is one line: a NUL or newline in it is not one. */
		if (c == '\0' || c == '\n' || c == '\r')
			goto bad;
		if (n + 1 >= PIN_MAX) {
			explicit_bzero(pin->data, PIN_MAX);
			return -EMSGSIZE;
		}
		pin->data[n++] = c;
	}
	pin->size = n;
	return 0;
bad:
	explicit_bzero(pin->data, PIN_MAX);
	return -EBADMSG;
}

static void stop_child(Pinentry *p)
{
	p->io = sd_event_source_disable_unref(p->io);
	p->timer = sd_event_source_disable_unref(p->timer);
	if (p->to_child >= 0) {
		/* BYE is polite; closing stdin ends pinentry as well. */
		(void)!write(p->to_child, "BYE\n", 4);
		close(p->to_child);
		p->to_child = -1;
	}
	if (p->from_child >= 0) {
		close(p->from_child);
		p->from_child = -1;
	}
	if (p->pid > 0) {
		int status;
		/* A pinentry that has answered exits on EOF at once; one still
		 * showing its window is told to go. */
		if (waitpid(p->pid, &status, WNOHANG) == 0) {
			usleep(20000);
			if (waitpid(p->pid, &status, WNOHANG) == 0) {
				kill(p->pid, SIGTERM);
				(void)waitpid(p->pid, &status, 0);
			}
		}
		p->pid = 0;
	}
}

Pinentry *pinentry_free(Pinentry *p)
{
	if (!p)
		return NULL;
	stop_child(p);
	for (size_t i = 0; i < p->n_commands; i++)
		free(p->commands[i]);
	free(p->commands);
	if (p->buffer) {
		explicit_bzero(p->buffer, LINE_BUFFER_SIZE);
		munlock(p->buffer, LINE_BUFFER_SIZE);
		munmap(p->buffer, LINE_BUFFER_SIZE);
	}
	pin_free(p->pin);
	free(p);
	return NULL;
}

static void finish(Pinentry *p, int r)
{
	Pin *pin = NULL;
	PinentryDoneFn done = p->done;

	stop_child(p);
	explicit_bzero(p->buffer, LINE_BUFFER_SIZE);
	p->filled = 0;
	if (r == 0)
		pin = TAKE_PTR(p->pin);
	p->done = NULL;
	if (done)
		done(p->userdata, pin, r);
}

static int send_next(Pinentry *p)
{
	const char *line = p->commands[p->next];
	size_t size = strlen(line);

	/* Commands are short and pinentry reads them as they come: the pipe
	 * never fills, so a plain write does. */
	if (write(p->to_child, line, size) != (ssize_t)size || write(p->to_child, "\n", 1) != 1)
		return -errno;
	return 0;
}

static bool awaiting(Pinentry *p, const char *verb)
{
	size_t n = strlen(verb);

	return p->greeted && p->next < p->n_commands &&
	       strncmp(p->commands[p->next], verb, n) == 0 &&
	       (p->commands[p->next][n] == '\0' || p->commands[p->next][n] == ' ');
}

/* The awaited command succeeded (or the greeting came): the next one goes
 * out, or the dialogue ends after GETPIN. True when it ended: p may be
 * gone then (the done callback may free it). */
static bool advance(Pinentry *p)
{
	int r;

	if (awaiting(p, "GETPIN")) {
		/* An empty entry comes as OK without data. */
		finish(p, p->got_pin && p->pin->size > 0 ? 0 : -ENODATA);
		return true;
	}
	if (p->greeted)
		p->next++;
	p->greeted = true;
	if (p->next >= p->n_commands) {
		finish(p, -EPROTO);
		return true;
	}
	r = send_next(p);
	if (r < 0) {
		finish(p, r);
		return true;
	}
	return false;
}

static bool is_word(const char *line, size_t size, const char *word)
{
	size_t n = strlen(word);

	return size >= n && strncmp(line, word, n) == 0 && (size == n || line[n] == ' ');
}

/* One line from pinentry. True when it ended the dialogue (p may be gone). */
static bool handle_line(Pinentry *p, const char *line, size_t size)
{
	if (is_word(line, size, "D")) {
		int r;
		if (!awaiting(p, "GETPIN")) {
			finish(p, -EPROTO);
			return true;
		}
		r = assuan_decode_pin(line + 2, size > 2 ? size - 2 : 0, p->pin);
		if (r < 0) {
			finish(p, r);
			return true;
		}
		p->got_pin = true;
		return false;
	}
	if (is_word(line, size, "OK"))
		return advance(p);
	if (is_word(line, size, "ERR")) {
		unsigned long code = strtoul(line + 3, NULL, 10);
		/* An option or a button label the program does not know is
		 * not a failure. */
		if (awaiting(p, "OPTION") || awaiting(p, "SETOK") || awaiting(p, "SETCANCEL"))
			return advance(p);
		finish(p, (code & GPG_ERR_CODE_MASK) == GPG_ERR_CANCELED ? -ECANCELED : -EIO);
		return true;
	}
	/* Status and comments: nothing to do. */
	if (is_word(line, size, "S") || (size > 0 && line[0] == '#'))
		return false;
	/* An INQUIRE would wait for data we do not offer. */
	finish(p, -EPROTO);
	return true;
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	Pinentry *p = userdata;
	ssize_t n = read(fd, p->buffer + p->filled, LINE_BUFFER_SIZE - p->filled);
	char *newline;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		finish(p, n == 0 ? -EPIPE : -errno);
		return 0;
	}
	if (!p->done)
		return 0;
	p->filled += (size_t)n;
	while (p->done && (newline = memchr(p->buffer, '\n', p->filled))) {
		size_t size = (size_t)(newline - p->buffer);

		*newline = '\0';
		if (handle_line(p, p->buffer, size))
			return 0;
		memmove(p->buffer, newline + 1, p->filled - size - 1);
		p->filled -= size + 1;
		explicit_bzero(p->buffer + p->filled, LINE_BUFFER_SIZE - p->filled);
	}
	if (p->done && p->filled == LINE_BUFFER_SIZE)
		finish(p, -EPROTO); /* a line longer than Assuan allows */
	return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
	finish(userdata, -ETIMEDOUT);
	return 0;
}

static int add_command(Pinentry *p, const char *verb, const char *argument)
{
	_cleanup_free_ char *escaped = NULL;
	char **commands, *line;

	if (argument) {
		escaped = assuan_escape(argument, ASSUAN_LINE_MAX - strlen(verb) - 2);
		if (!escaped)
			return -ENOMEM;
	}
	if (asprintf(&line, "%s%s%s", verb, escaped ? " " : "", strempty(escaped)) < 0)
		return -ENOMEM;
	commands = reallocarray(p->commands, p->n_commands + 1, sizeof(char *));
	if (!commands) {
		free(line);
		return -ENOMEM;
	}
	p->commands = commands;
	p->commands[p->n_commands++] = line;
	return 0;
}

static int build_commands(Pinentry *p, const PinentryRequest *request)
{
	/* Our texts are UTF-8; pinentry finds the display in its
	 * environment, which is ours. */
	int r = add_command(p, "OPTION lc-ctype=C.UTF-8", NULL);

	if (r >= 0 && request->title)
		r = add_command(p, "SETTITLE", request->title);
	if (r >= 0 && request->confirm) {
		r = add_command(p, "SETDESC", request->confirm);
		if (r >= 0 && request->ok_label)
			r = add_command(p, "SETOK", request->ok_label);
		if (r >= 0 && request->cancel_label)
			r = add_command(p, "SETCANCEL", request->cancel_label);
		if (r >= 0)
			r = add_command(p, "CONFIRM", NULL);
	}
	if (r >= 0)
		r = add_command(p, "SETDESC", request->description);
	if (r >= 0 && request->prompt)
		r = add_command(p, "SETPROMPT", request->prompt);
	if (r >= 0 && request->error)
		r = add_command(p, "SETERROR", request->error);
	if (r >= 0)
		r = add_command(p, "GETPIN", NULL);
	return r;
}

static int spawn(Pinentry *p)
{
	const char *program = getenv("PINENTRY");
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	posix_spawn_file_actions_t actions;
	char *argv[2];
	int r;

	if (isempty(program))
		program = "pinentry";
	argv[0] = (char *)program;
	argv[1] = NULL;
	if (pipe2(in, O_CLOEXEC) < 0)
		return -errno;
	if (pipe2(out, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = -posix_spawn_file_actions_init(&actions);
	if (r < 0)
		goto fail;
	r = -posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
	if (r >= 0)
		r = -posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
	if (r >= 0)
		r = -posix_spawnp(&p->pid, program, &actions, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&actions);
	if (r < 0)
		goto fail;
	close(in[0]);
	close(out[1]);
	p->to_child = in[1];
	p->from_child = out[0];
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return r;
}

int pinentry_start(sd_event *event, const PinentryRequest *request, PinentryDoneFn done,
		   void *userdata, Pinentry **ret)
{
	Pinentry *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return -ENOMEM;
	p->to_child = p->from_child = -1;
	p->done = done;
	p->userdata = userdata;
	p->buffer = mmap(NULL, LINE_BUFFER_SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->buffer == MAP_FAILED) {
		p->buffer = NULL;
		pinentry_free(p);
		return -ENOMEM;
	}
	(void)mlock(p->buffer, LINE_BUFFER_SIZE);
	(void)madvise(p->buffer, LINE_BUFFER_SIZE, MADV_DONTDUMP);
	r = pin_new(&p->pin);
	if (r >= 0)
		r = build_commands(p, request);
	if (r >= 0)
		r = spawn(p);
	if (r >= 0)
		r = sd_event_add_io(event, &p->io, p->from_child, EPOLLIN, on_io, p);
	if (r >= 0)
		r = sd_event_add_time_relative(event, &p->timer, CLOCK_MONOTONIC,
					       PINENTRY_TIMEOUT_USEC, 0, on_timeout, p);
	if (r < 0) {
		pinentry_free(p);
		return r;
	}
	*ret = p;
	return 0;
}
