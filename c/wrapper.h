/*
 * The parts of NGINX Unit a language module uses, for bindgen: the module
 * descriptor and application config (nxt_application.h, which pulls in
 * nxt_main.h) and libunit, the request/response API (nxt_unit*.h).
 */
#include <nxt_main.h>
#include <nxt_application.h>
#include <nxt_unit.h>
#include <nxt_unit_field.h>
#include <nxt_unit_request.h>
#include <nxt_unit_response.h>
#include <nxt_unit_typedefs.h>
/* The sizes of libunit's shared memory segments and chunks. */
#include <nxt_port_memory_int.h>
