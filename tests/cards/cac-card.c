/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A CAC card for the integration tests: libcacard emulates the card, its
 * keys and certificates live in an NSS database (the database password is
 * the card's PIN), and this program puts it into a vpcd reader, so that
 * pcscd and OpenSC see a real PC/SC card that signs but can neither make
 * keys nor store objects.
 *
 *   cac-card --db DIR --cert NICK [--cert NICK [--cert NICK]] --port PORT
 *            [--host ADDRESS]
 *
 * Connecting to vpcd inserts the card, SIGTERM (or SIGINT) removes it and
 * ends the program. "READY" on standard output says the card is in.
 *
 * vpcd's framing, both ways: a 2-byte big-endian length, then the payload.
 * One-byte payloads from vpcd are commands (0x00 power off, 0x01 power on,
 * 0x02 reset, 0x04 send the ATR); the rest are command APDUs, answered with
 * a response APDU.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libcacard.h>

#include "macro.h"

#define READER_NAME "safecad CAC"
#define MAX_CERTS 3
#define CONNECT_TIMEOUT_MS 10000
#define MAX_ATR 64
/* The largest frame vpcd's 2-byte length can announce. */
#define MAX_FRAME 65535

enum {
	VPCD_POWER_OFF = 0x00,
	VPCD_POWER_ON = 0x01,
	VPCD_RESET = 0x02,
	VPCD_GET_ATR = 0x04,
};

static const char *arg_db;
/* NULL-terminated, for g_strjoinv() */
static const char *arg_certs[MAX_CERTS + 1];
static size_t arg_n_certs;
static const char *arg_host = "127.0.0.1";
static const char *arg_port;

static inline void g_freep(void *p)
{
	g_free(*(void **)p);
}
#define _cleanup_g_free_ _cleanup_(g_freep)

DEFINE_TRIVIAL_CLEANUP_FUNC(VReader *, vreader_free)

_printf_(2, 3) static int log_error_errno(int error, const char *format, ...)
{
	va_list ap;
	int saved = errno;

	errno = error < 0 ? -error : error;
	fputs("cac-card: ", stderr);
	va_start(ap, format);
	vfprintf(stderr, format, ap);
	va_end(ap);
	fputc('\n', stderr);
	errno = saved;
	return error < 0 ? error : -error;
}

#define log_error(...) log_error_errno(EINVAL, __VA_ARGS__)

static void help(void)
{
	printf("Usage: cac-card --db DIR --cert NICKNAME [--cert NICKNAME...] --port PORT\n"
	       "                [--host ADDRESS]\n\n"
	       "Puts a CAC card emulated by libcacard into a vpcd reader.\n\n"
	       "  --db DIR         the NSS database (sql:) with the keys and certificates\n"
	       "  --cert NICKNAME  a certificate on the card, by NSS nickname (up to %d)\n"
	       "  --host ADDRESS   vpcd's address (default 127.0.0.1)\n"
	       "  --port PORT      vpcd's TCP port (the reader)\n",
	       MAX_CERTS);
}

/* libcacard's option string ends a nickname at ',' or ')' and the database
 * at '"', and knows no escapes. */
static bool option_value_ok(const char *value, const char *forbidden)
{
	return value[0] != '\0' && !strpbrk(value, forbidden);
}

static int parse_argv(int argc, char *argv[])
{
	static const struct option options[] = {
	    {"help", no_argument, NULL, 'h'},	    {"db", required_argument, NULL, 'd'},
	    {"cert", required_argument, NULL, 'c'}, {"host", required_argument, NULL, 'H'},
	    {"port", required_argument, NULL, 'p'}, {},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'h':
			help();
			return 0;
		case 'd':
			if (!option_value_ok(optarg, "\"\n"))
				return log_error("Bad database folder: %s", optarg);
			arg_db = optarg;
			break;
		case 'c':
			if (arg_n_certs >= MAX_CERTS)
				return log_error("A CAC card holds at most %d certificates",
						 MAX_CERTS);
			if (!option_value_ok(optarg, ",)\"\n") || optarg[0] == ' ')
				return log_error("Bad certificate nickname: %s", optarg);
			arg_certs[arg_n_certs++] = optarg;
			break;
		case 'H':
			arg_host = optarg;
			break;
		case 'p':
			arg_port = optarg;
			break;
		default:
			return -EINVAL;
		}
	}
	if (optind < argc)
		return log_error("Unexpected argument: %s", argv[optind]);
	if (!arg_db || arg_n_certs == 0 || !arg_port)
		return log_error("--db, --cert and --port are required (see --help)");
	return 1;
}

static void drain_events(void)
{
	VEvent *event;

	while ((event = vevent_get_next_vevent()))
		vevent_delete(event);
}

/* Starts libcacard on the NSS database and returns the reader holding the
 * card, with the card's ATR. */
static int card_start(VReader **ret_reader, unsigned char *ret_atr, int *ret_atr_len)
{
	_cleanup_g_free_ char *options = NULL;
	_cleanup_g_free_ char *certs = NULL;
	VReader *reader;
	int atr_len = MAX_ATR;

	certs = g_strjoinv(",", (char **)arg_certs);
	/* soft=(NSS slot, reader name, card type, type parameters, certificates):
	 * an empty slot name is NSS's internal key slot, the database's own. */
	options = g_strdup_printf("db=\"sql:%s\" use_hw=no soft=(," READER_NAME ",CAC,,%s)", arg_db,
				  certs);
	if (vcard_emul_init(vcard_emul_options(options)) != VCARD_EMUL_OK)
		return log_error(
		    "Failed to start the card: no NSS database in %s or none of the certificates",
		    arg_db);
	drain_events();

	reader = vreader_get_reader_by_name(READER_NAME);
	if (!reader || vreader_card_is_present(reader) != VREADER_OK) {
		if (reader)
			vreader_free(reader);
		return log_error("The card is missing from its reader");
	}
	if (vreader_power_on(reader, ret_atr, &atr_len) != VREADER_OK || atr_len <= 0) {
		vreader_free(reader);
		return log_error("The card gave no ATR");
	}
	*ret_atr_len = atr_len;
	*ret_reader = reader;
	return 0;
}

static void card_stop(VReader *reader)
{
	if (reader) {
		vreader_remove_reader(reader);
		vreader_free(reader);
	}
	drain_events();
	vcard_emul_finalize();
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool signal_pending(int signal_fd)
{
	struct pollfd p = {.fd = signal_fd, .events = POLLIN};

	return poll(&p, 1, 0) > 0;
}

/* Connects to vpcd, waiting for it to listen; the connection is the card
 * insertion. */
static int vpcd_connect(int signal_fd, int *ret_fd)
{
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
	struct addrinfo *addresses = NULL;
	int64_t deadline = now_ms() + CONNECT_TIMEOUT_MS;
	int r;

	r = getaddrinfo(arg_host, arg_port, &hints, &addresses);
	if (r != 0)
		return log_error("Failed to resolve %s port %s: %s", arg_host, arg_port,
				 gai_strerror(r));
	for (;;) {
		for (struct addrinfo *a = addresses; a; a = a->ai_next) {
			int fd =
			    socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);

			if (fd < 0)
				continue;
			if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
				freeaddrinfo(addresses);
				*ret_fd = fd;
				return 0;
			}
			r = -errno;
			close(fd);
		}
		if (now_ms() >= deadline || signal_pending(signal_fd))
			break;
		usleep(50 * 1000);
	}
	freeaddrinfo(addresses);
	return log_error_errno(r, "Failed to connect to vpcd at %s port %s: %m", arg_host,
			       arg_port);
}

/* Without quick acknowledgements each exchange with vpcd waits for the
 * delayed ACK timer (FACTS.md); the kernel clears the flag again after
 * a while, so it is set again after every read. */
static void quick_ack(int fd)
{
	int on = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof(on));
}

/* Reads exactly size bytes; 0 at a clean end of the connection. */
static int read_exact(int fd, unsigned char *buffer, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = read(fd, buffer + done, size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return done == 0 ? 0 : -EPROTO;
		done += (size_t)n;
		quick_ack(fd);
	}
	return 1;
}

/* Sends one frame in one write, as vpcd wants it. */
static int send_frame(int fd, const unsigned char *payload, size_t size)
{
	static unsigned char frame[2 + MAX_FRAME];
	size_t done = 0;

	if (size > MAX_FRAME)
		return -EMSGSIZE;
	frame[0] = (unsigned char)(size >> 8);
	frame[1] = (unsigned char)(size & 0xff);
	memcpy(frame + 2, payload, size);
	while (done < size + 2) {
		ssize_t n = send(fd, frame + done, size + 2 - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* Answers one frame from vpcd; 0 when vpcd closed the connection. */
static int serve_frame(int fd, VReader *reader, const unsigned char *atr, int atr_len)
{
	static unsigned char request[MAX_FRAME];
	static unsigned char response[MAX_FRAME];
	unsigned char header[2];
	size_t size;
	int response_len = sizeof(response);
	int r;

	r = read_exact(fd, header, sizeof(header));
	if (r <= 0)
		return r;
	size = (size_t)header[0] << 8 | header[1];
	if (size == 0)
		return -EPROTO;
	r = read_exact(fd, request, size);
	if (r == 0)
		return -EPROTO;
	if (r < 0)
		return r;

	if (size == 1) {
		switch (request[0]) {
		case VPCD_POWER_OFF:
			vreader_power_off(reader);
			return 1;
		case VPCD_POWER_ON:
		case VPCD_RESET:
			/* As with a real card, a reset ends the login. */
			vreader_power_on(reader, NULL, NULL);
			return 1;
		case VPCD_GET_ATR:
			return send_frame(fd, atr, (size_t)atr_len) < 0 ? -EIO : 1;
		default:
			log_error("Unknown vpcd command 0x%02x, ignoring", request[0]);
			return 1;
		}
	}

	if (vreader_xfr_bytes(reader, request, (int)size, response, &response_len) != VREADER_OK)
		return log_error("The card answered nothing to an APDU");
	r = send_frame(fd, response, (size_t)response_len);
	if (r < 0)
		return log_error_errno(r, "Failed to answer vpcd: %m");
	return 1;
}

static int run(int argc, char *argv[])
{
	_cleanup_(vreader_freep) VReader *reader = NULL;
	_cleanup_close_ int signal_fd = -1;
	_cleanup_close_ int fd = -1;
	unsigned char atr[MAX_ATR];
	int atr_len = 0;
	sigset_t signals;
	int on = 1;
	int r;

	r = parse_argv(argc, argv);
	if (r <= 0)
		return r;

	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0)
		return log_error_errno(-errno, "Failed to block signals: %m");
	signal_fd = signalfd(-1, &signals, SFD_CLOEXEC);
	if (signal_fd < 0)
		return log_error_errno(-errno, "Failed to make a signalfd: %m");

	r = card_start(&reader, atr, &atr_len);
	if (r < 0) {
		card_stop(NULL);
		return r;
	}

	r = vpcd_connect(signal_fd, &fd);
	if (r < 0) {
		card_stop(TAKE_PTR(reader));
		return r;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	quick_ack(fd);
	printf("READY\n");
	fflush(stdout);

	for (;;) {
		struct pollfd p[2] = {
		    {.fd = fd, .events = POLLIN},
		    {.fd = signal_fd, .events = POLLIN},
		};

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = log_error_errno(-errno, "Failed to wait: %m");
			break;
		}
		if (p[1].revents) {
			r = 0;
			break;
		}
		if (p[0].revents) {
			r = serve_frame(fd, reader, atr, atr_len);
			if (r == 0) {
				fputs("cac-card: vpcd closed the connection\n", stderr);
				break;
			}
			if (r < 0)
				break;
		}
	}

	/* Closing the connection removes the card from the reader. */
	close(TAKE_FD(fd));
	card_stop(TAKE_PTR(reader));
	return r;
}

int main(int argc, char *argv[])
{
	return run(argc, argv) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
