"""An independent gRPC client (Python grpcio from Debian's python3-grpcio) for servekit's
UserService and health service. No generated code: the two small messages are encoded and
decoded by hand (protobuf wire format), and the calls go through grpcio's generic unary API.

usage: python3 grpc_client.py ADDRESS TOKEN APP_ID USER_ID
Prints one JSON object: the health status, the user, and the status of a call without a token.
"""
import json
import sys

import grpc


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def string_field(number, text):
    data = text.encode("utf-8")
    return varint((number << 3) | 2) + varint(len(data)) + data


def read_varint(data, at):
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, at
        shift += 7


def decode(data):
    """Field number -> value: bytes for length-delimited fields, int for varints."""
    fields, at = {}, 0
    while at < len(data):
        key, at = read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 2:
            size, at = read_varint(data, at)
            fields[number] = data[at:at + size]
            at += size
        elif wire == 0:
            fields[number], at = read_varint(data, at)
        else:
            raise ValueError("unexpected wire type %d" % wire)
    return fields


def main():
    address, token, app_id, user_id = sys.argv[1:5]
    with grpc.insecure_channel(address) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        health = decode(check(string_field(1, ""), timeout=5)).get(1, 0)

        get_user = channel.unary_unary("/servekit.users.v1.UserService/GetUser")
        metadata = (("authorization", "Bearer " + token), ("x-app-id", app_id))
        user = decode(get_user(string_field(1, user_id), metadata=metadata, timeout=5))

        try:
            get_user(string_field(1, user_id), metadata=(("x-app-id", app_id),), timeout=5)
            unauthenticated = "OK"
        except grpc.RpcError as error:
            unauthenticated = error.code().name

    print(json.dumps({
        "health": {1: "SERVING", 2: "NOT_SERVING"}.get(health, str(health)),
        "user": {
            "id": user.get(1, b"").decode(),
            "username": user.get(2, b"").decode(),
            "created_at": user.get(3, b"").decode(),
        },
        "without_token": unauthenticated,
    }))


if __name__ == "__main__":
    main()
