#ifndef HERALD_CAMQP_SHIM_H
#define HERALD_CAMQP_SHIM_H

/* rabbitmq-c 0.11 installs <amqp.h>; 0.12 and later moved the headers under rabbitmq-c/. */
#if __has_include(<rabbitmq-c/amqp.h>)
#include <rabbitmq-c/amqp.h>
#include <rabbitmq-c/tcp_socket.h>
#else
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#endif

/* amqp_login is variadic (the SASL arguments), which Swift cannot call. The client
 * announces consumer_cancel_notify (merged with the library's default capabilities):
 * without it the broker cancels a consumer (its queue deleted, a node lost) silently. */
static inline amqp_rpc_reply_t herald_amqp_login_plain(
    amqp_connection_state_t conn, const char *vhost, int channel_max, int frame_max,
    int heartbeat, const char *user, const char *password) {
  amqp_table_entry_t capability;
  capability.key = amqp_cstring_bytes("consumer_cancel_notify");
  capability.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  capability.value.value.boolean = 1;
  amqp_table_entry_t entries[2];
  entries[0].key = amqp_cstring_bytes("capabilities");
  entries[0].value.kind = AMQP_FIELD_KIND_TABLE;
  entries[0].value.value.table.num_entries = 1;
  entries[0].value.value.table.entries = &capability;
  entries[1].key = amqp_cstring_bytes("connection_name");
  entries[1].value.kind = AMQP_FIELD_KIND_UTF8;
  entries[1].value.value.bytes = amqp_cstring_bytes("herald");
  amqp_table_t properties;
  properties.num_entries = 2;
  properties.entries = entries;
  return amqp_login_with_properties(conn, vhost, channel_max, frame_max, heartbeat, &properties,
                                    AMQP_SASL_METHOD_PLAIN, user, password);
}

/* Method ids and property flags are macros with casts; give Swift plain constants. */
static const uint32_t herald_method_basic_deliver = AMQP_BASIC_DELIVER_METHOD;
static const uint32_t herald_method_basic_ack = AMQP_BASIC_ACK_METHOD;
static const uint32_t herald_method_basic_nack = AMQP_BASIC_NACK_METHOD;
static const uint32_t herald_method_basic_return = AMQP_BASIC_RETURN_METHOD;
static const uint32_t herald_method_basic_cancel = AMQP_BASIC_CANCEL_METHOD;
static const uint32_t herald_method_basic_cancel_ok = AMQP_BASIC_CANCEL_OK_METHOD;
static const uint32_t herald_method_channel_close = AMQP_CHANNEL_CLOSE_METHOD;
static const uint32_t herald_method_channel_close_ok = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const uint32_t herald_method_connection_close = AMQP_CONNECTION_CLOSE_METHOD;
static const uint32_t herald_method_connection_close_ok = AMQP_CONNECTION_CLOSE_OK_METHOD;

static const uint32_t herald_flag_content_type = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const uint32_t herald_flag_headers = AMQP_BASIC_HEADERS_FLAG;
static const uint32_t herald_flag_delivery_mode = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const uint32_t herald_flag_correlation_id = AMQP_BASIC_CORRELATION_ID_FLAG;
static const uint32_t herald_flag_expiration = AMQP_BASIC_EXPIRATION_FLAG;
static const uint32_t herald_flag_message_id = AMQP_BASIC_MESSAGE_ID_FLAG;
static const uint32_t herald_flag_timestamp = AMQP_BASIC_TIMESTAMP_FLAG;
static const uint32_t herald_flag_type = AMQP_BASIC_TYPE_FLAG;

/* basic.cancel without waiting for its reply: rabbitmq-c's synchronous call would hold
 * every frame that arrives meanwhile (whole message bodies) in its own queue, outside the
 * consumer's body limit; a cancel is sent while deliveries stream in. The reader handles
 * basic.cancel-ok like any other frame. (The other synchronous calls — qos, consume,
 * channel open and close — still queue what arrives meanwhile; they come before a
 * consumer's deliveries or after its cancel-ok.) */
static inline int herald_amqp_send_basic_cancel(amqp_connection_state_t conn, amqp_channel_t channel, amqp_bytes_t tag) {
  amqp_basic_cancel_t request;
  request.consumer_tag = tag;
  request.nowait = 0;
  return amqp_send_method(conn, channel, AMQP_BASIC_CANCEL_METHOD, &request);
}

/* Acknowledges a server-initiated channel.close or connection.close. */
static inline int herald_amqp_send_channel_close_ok(amqp_connection_state_t conn, amqp_channel_t channel) {
  amqp_channel_close_ok_t ok;
  return amqp_send_method(conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
}
static inline int herald_amqp_send_connection_close_ok(amqp_connection_state_t conn) {
  amqp_connection_close_ok_t ok;
  return amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
}

#endif
