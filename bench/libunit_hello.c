/*
 * The hello guest's answer given by a plain libunit application in C: what an
 * application process of Unit costs when it does nothing else, so the ceiling
 * of any Unit language module on the same machine (bench/unit.sh's second
 * reference). Built there against the Unit tree's libunit:
 *
 *   cc -O2 -I$UNIT_SRC/src -I$UNIT_SRC/build/include libunit_hello.c \
 *       $UNIT_SRC/build/lib/libunit.a -lpthread
 */

#include <string.h>

#include <nxt_unit.h>

#define FIELD(s) s, (uint8_t) (sizeof(s) - 1)

static const char  body[] = "Hello from rvm\n";

static void
hello(nxt_unit_request_info_t *req)
{
    int  rc;

    rc = nxt_unit_response_init(req, 200, 2,
                                sizeof("content-type") + sizeof("text/plain")
                                + sizeof("content-length") + sizeof("15")
                                + sizeof(body));
    if (rc == NXT_UNIT_OK) {
        rc = nxt_unit_response_add_field(req, FIELD("content-type"),
                                         FIELD("text/plain"));
    }
    if (rc == NXT_UNIT_OK) {
        rc = nxt_unit_response_add_field(req, FIELD("content-length"),
                                         FIELD("15"));
    }
    if (rc == NXT_UNIT_OK) {
        rc = nxt_unit_response_add_content(req, body, sizeof(body) - 1);
    }
    if (rc == NXT_UNIT_OK) {
        rc = nxt_unit_response_send(req);
    }

    nxt_unit_request_done(req, rc);
}

int
main(void)
{
    int              rc;
    nxt_unit_ctx_t   *ctx;
    nxt_unit_init_t  init;

    memset(&init, 0, sizeof(init));
    init.callbacks.request_handler = hello;

    ctx = nxt_unit_init(&init);
    if (ctx == NULL) {
        return 1;
    }

    rc = nxt_unit_run(ctx);
    nxt_unit_done(ctx);

    return rc;
}
