package rsb

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// rsbProtocol builds the descriptors of rsb-protocol's EventId, UserInfo,
// UserTime, EventMetaData and Notification (proto2), so that the
// protobuf library itself checks this package's hand-written encoding.
func rsbProtocol(t testing.TB) protoreflect.MessageDescriptor {
	t.Helper()
	req := descriptorpb.FieldDescriptorProto_LABEL_REQUIRED.Enum()
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	bytesT := descriptorpb.FieldDescriptorProto_TYPE_BYTES.Enum()
	u32 := descriptorpb.FieldDescriptorProto_TYPE_UINT32.Enum()
	u64 := descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	i64 := descriptorpb.FieldDescriptorProto_TYPE_INT64.Enum()
	msgT := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	f := func(name string, num int32, label *descriptorpb.FieldDescriptorProto_Label, typ *descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(num), Label: label, Type: typ}
		if msg != "" {
			fd.TypeName = proto.String(".rsb.protocol." + msg)
		}
		return fd
	}
	m := func(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
		return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:    proto.String("rsb/protocol/test.proto"),
		Package: proto.String("rsb.protocol"),
		Syntax:  proto.String("proto2"),
		MessageType: []*descriptorpb.DescriptorProto{
			m("EventId", f("sender_id", 1, req, bytesT, ""), f("sequence_number", 2, req, u32, "")),
			m("UserInfo", f("key", 1, req, bytesT, ""), f("value", 2, req, bytesT, "")),
			m("UserTime", f("key", 1, req, bytesT, ""), f("timestamp", 2, req, u64, "")),
			m("EventMetaData",
				f("create_time", 2, req, i64, ""), f("send_time", 3, req, i64, ""),
				f("receive_time", 4, opt, i64, ""), f("deliver_time", 5, opt, i64, ""),
				f("user_times", 6, rep, msgT, "UserTime"), f("user_infos", 7, rep, msgT, "UserInfo")),
			m("Notification",
				f("scope", 6, opt, bytesT, ""), f("wire_schema", 7, opt, bytesT, ""), f("data", 9, opt, bytesT, ""),
				f("causes", 13, rep, msgT, "EventId"), f("method", 14, opt, bytesT, ""),
				f("meta_data", 15, opt, msgT, "EventMetaData"), f("event_id", 108, req, msgT, "EventId")),
		},
	}
	fd, err := protodesc.NewFile(fdp, nil)
	if err != nil {
		t.Fatal(err)
	}
	return fd.Messages().ByName("Notification")
}

// TestProtobufLibraryAgrees: the protobuf library parses this package's
// encodings (with every required field present) and writes the same
// bytes back.
func TestProtobufLibraryAgrees(t *testing.T) {
	md := rsbProtocol(t)
	for i, g := range goldenNotifications {
		ours := g.n.Marshal()
		msg := dynamicpb.NewMessage(md)
		if err := proto.Unmarshal(ours, msg); err != nil {
			t.Fatalf("%d. %s: the protobuf library rejects our bytes: %v", i, g.name, err)
		}
		theirs, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(theirs, ours) {
			t.Errorf("%d. %s: the protobuf library writes\n%x\nwe write\n%x", i, g.name, theirs, ours)
		}
	}
}
