/*
 * client.h - a tiny HTTP/1.1 client over loopback sockets for the API
 * suites: one request per connection (Connection: close), the whole answer
 * read until the server closes, chunked bodies decoded. Also raw requests
 * (for paths a polite client would never send) and an open connection read
 * incrementally (for the live stream).
 */
#ifndef FIREWATCH_TEST_HTTP_CLIENT_H
#define FIREWATCH_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

struct hc_response {
    int status;         /* 0 when no valid answer came */
    char headers[8192]; /* the header block, lines joined with \r\n */
    char *body;         /* NUL-terminated, malloc'd */
    size_t body_len;
};

/* Sends method path with extra_headers (each line ending \r\n, may be NULL)
 * and body (may be NULL). Returns 0 or -errno. Free with hc_free. */
int hc_request(int port, const char *method, const char *path, const char *extra_headers, const char *body,
               size_t body_len, struct hc_response *out);

/* Sends exactly len bytes of req and reads the answer. */
int hc_raw(int port, const char *req, size_t len, struct hc_response *out);

/* Copies the value of header name (case-insensitive) into out; NULL if absent. */
const char *hc_header(const struct hc_response *r, const char *name, char *out, size_t size);

void hc_free(struct hc_response *r);

/* Opens a connection and sends req; returns the socket or -errno. */
int hc_open(int port, const char *req);

/* Reads from fd, appending to buf (size bytes, kept NUL-terminated, *len
 * updated) until needle appears after offset from or timeout_ms passes.
 * Returns true when found. */
bool hc_read_until(int fd, char *buf, size_t size, size_t *len, size_t from, const char *needle,
                   int timeout_ms);

#endif
