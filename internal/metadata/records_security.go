package metadata

import (
	"cmp"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kbin"
)

// The security records: SCRAM credentials, ACLs and client quotas, kept in
// the metadata log as KRaft keeps them, so that every node authenticates,
// authorizes and throttles alike and a change survives any node.

// Security record types, as KRaft numbers them.
const (
	TypeUserSCRAMCredential       uint16 = 11
	TypeClientQuota               uint16 = 14
	TypeAccessControlEntry        uint16 = 18
	TypeRemoveAccessControlEntry  uint16 = 19
	TypeRemoveUserSCRAMCredential uint16 = 22
)

// UserSCRAMCredential sets a user's credential for one SCRAM mechanism
// (1 SCRAM-SHA-256, 2 SCRAM-SHA-512): what the server needs to check a
// proof, never the password.
type UserSCRAMCredential struct {
	Name                 string
	Mechanism            int8
	Salt                 []byte
	StoredKey, ServerKey []byte
	Iterations           int32
}

// RemoveUserSCRAMCredential deletes a user's credential for one mechanism.
type RemoveUserSCRAMCredential struct {
	Name      string
	Mechanism int8
}

// AccessControlEntry adds an ACL (kmsg's ACL codes in each int8), under an
// id that RemoveAccessControlEntry names.
type AccessControlEntry struct {
	ID           [16]byte
	ResourceType int8
	ResourceName string
	PatternType  int8
	Principal    string
	Host         string
	Operation    int8
	Permission   int8
}

// RemoveAccessControlEntry deletes the ACL with that id.
type RemoveAccessControlEntry struct{ ID [16]byte }

// QuotaEntityPart is one entity type of a client quota entity (user,
// client-id, ip) and its name, nil for that type's default.
type QuotaEntityPart struct {
	Type string
	Name *string
}

// ClientQuota sets (or, with Remove, deletes) one quota key of an entity.
type ClientQuota struct {
	Entity []QuotaEntityPart
	Key    string
	Value  float64
	Remove bool
}

func (*UserSCRAMCredential) Type() uint16       { return TypeUserSCRAMCredential }
func (*RemoveUserSCRAMCredential) Type() uint16 { return TypeRemoveUserSCRAMCredential }
func (*AccessControlEntry) Type() uint16        { return TypeAccessControlEntry }
func (*RemoveAccessControlEntry) Type() uint16  { return TypeRemoveAccessControlEntry }
func (*ClientQuota) Type() uint16               { return TypeClientQuota }

// newSecurityRecord is an empty security record of type t, nil for
// another type.
func newSecurityRecord(t uint16) Record {
	switch t {
	case TypeUserSCRAMCredential:
		return new(UserSCRAMCredential)
	case TypeRemoveUserSCRAMCredential:
		return new(RemoveUserSCRAMCredential)
	case TypeAccessControlEntry:
		return new(AccessControlEntry)
	case TypeRemoveAccessControlEntry:
		return new(RemoveAccessControlEntry)
	case TypeClientQuota:
		return new(ClientQuota)
	}
	return nil
}

func appendBytes(dst, b []byte) []byte {
	dst = kbin.AppendUvarint(dst, uint32(len(b)))
	return append(dst, b...)
}

func readBytes(r *kbin.Reader) []byte {
	return slices.Clone(r.Span(int(r.Uvarint())))
}

func (x *UserSCRAMCredential) appendTo(dst []byte) []byte {
	dst = appendString(dst, x.Name)
	dst = kbin.AppendInt8(dst, x.Mechanism)
	dst = appendBytes(dst, x.Salt)
	dst = appendBytes(dst, x.StoredKey)
	dst = appendBytes(dst, x.ServerKey)
	return kbin.AppendInt32(dst, x.Iterations)
}

func (x *UserSCRAMCredential) readFrom(r *kbin.Reader) {
	x.Name, x.Mechanism = readString(r), r.Int8()
	x.Salt, x.StoredKey, x.ServerKey = readBytes(r), readBytes(r), readBytes(r)
	x.Iterations = r.Int32()
}

func (x *RemoveUserSCRAMCredential) appendTo(dst []byte) []byte {
	return kbin.AppendInt8(appendString(dst, x.Name), x.Mechanism)
}
func (x *RemoveUserSCRAMCredential) readFrom(r *kbin.Reader) {
	x.Name, x.Mechanism = readString(r), r.Int8()
}

func (x *AccessControlEntry) appendTo(dst []byte) []byte {
	dst = kbin.AppendUuid(dst, x.ID)
	dst = kbin.AppendInt8(dst, x.ResourceType)
	dst = appendString(dst, x.ResourceName)
	dst = kbin.AppendInt8(dst, x.PatternType)
	dst = appendString(dst, x.Principal)
	dst = appendString(dst, x.Host)
	dst = kbin.AppendInt8(dst, x.Operation)
	return kbin.AppendInt8(dst, x.Permission)
}

func (x *AccessControlEntry) readFrom(r *kbin.Reader) {
	x.ID, x.ResourceType, x.ResourceName, x.PatternType = r.Uuid(), r.Int8(), readString(r), r.Int8()
	x.Principal, x.Host, x.Operation, x.Permission = readString(r), readString(r), r.Int8(), r.Int8()
}

func (x *RemoveAccessControlEntry) appendTo(dst []byte) []byte { return kbin.AppendUuid(dst, x.ID) }
func (x *RemoveAccessControlEntry) readFrom(r *kbin.Reader)    { x.ID = r.Uuid() }

func (x *ClientQuota) appendTo(dst []byte) []byte {
	dst = kbin.AppendUvarint(dst, uint32(len(x.Entity)))
	for _, p := range x.Entity {
		dst = appendString(dst, p.Type)
		dst = appendNullableString(dst, p.Name)
	}
	dst = appendString(dst, x.Key)
	dst = kbin.AppendFloat64(dst, x.Value)
	return kbin.AppendBool(dst, x.Remove)
}

func (x *ClientQuota) readFrom(r *kbin.Reader) {
	n := r.Uvarint()
	if int(n) > len(r.Src) {
		invalidate(r)
		return
	}
	x.Entity = make([]QuotaEntityPart, n)
	for i := range x.Entity {
		x.Entity[i] = QuotaEntityPart{Type: readString(r), Name: readNullableString(r)}
	}
	x.Key, x.Value, x.Remove = readString(r), r.Float64(), r.Bool()
	if math.IsNaN(x.Value) {
		invalidate(r) // no quota is NaN, and NaN would not equal itself in an image
	}
}

// SCRAMKey names one credential: a user and a mechanism.
type SCRAMKey struct {
	User      string
	Mechanism int8
}

// QuotaImage is one entity's client quotas.
type QuotaImage struct {
	Entity []QuotaEntityPart // in the order the first record named them
	Values map[string]float64
}

// SecurityImage is the security part of the image.
type SecurityImage struct {
	SCRAM  map[SCRAMKey]UserSCRAMCredential
	ACLs   map[[16]byte]AccessControlEntry
	Quotas map[string]*QuotaImage // by QuotaEntityKey
	// Offset is the offset of the last batch that changed any of it (0
	// when none did since the image was empty): a reader that keeps a copy
	// of this state (the broker's credential store, authorizer, quotas)
	// rebuilds it when Offset moves, a snapshot restore included.
	Offset uint64
}

func newSecurityImage() SecurityImage {
	return SecurityImage{SCRAM: map[SCRAMKey]UserSCRAMCredential{}, ACLs: map[[16]byte]AccessControlEntry{}, Quotas: map[string]*QuotaImage{}}
}

func (s SecurityImage) clone() SecurityImage {
	out := newSecurityImage()
	out.Offset = s.Offset
	for k, c := range s.SCRAM {
		c.Salt, c.StoredKey, c.ServerKey = slices.Clone(c.Salt), slices.Clone(c.StoredKey), slices.Clone(c.ServerKey)
		out.SCRAM[k] = c
	}
	maps.Copy(out.ACLs, s.ACLs)
	for k, q := range s.Quotas {
		out.Quotas[k] = &QuotaImage{Entity: cloneEntity(q.Entity), Values: maps.Clone(q.Values)}
	}
	return out
}

func cloneEntity(e []QuotaEntityPart) []QuotaEntityPart {
	out := slices.Clone(e)
	for i, p := range out {
		if p.Name != nil {
			n := *p.Name
			out[i].Name = &n
		}
	}
	return out
}

// QuotaEntityKey is an entity's key in SecurityImage.Quotas: its parts
// sorted by type, so that the same entity named in another order is the
// same key.
func QuotaEntityKey(e []QuotaEntityPart) string {
	parts := slices.SortedFunc(slices.Values(e), func(a, b QuotaEntityPart) int { return cmp.Compare(a.Type, b.Type) })
	var sb strings.Builder
	for _, p := range parts {
		sb.WriteString(p.Type)
		if p.Name == nil {
			sb.WriteString("\x00")
		} else {
			sb.WriteString("\x01" + *p.Name)
		}
		sb.WriteString("\x02")
	}
	return sb.String()
}

// applySecurity applies r if it is a security record; handled is false
// for another record.
func (img *Image) applySecurity(r Record) (handled bool, err error) {
	s := &img.Security
	switch x := r.(type) {
	case *UserSCRAMCredential:
		c := *x
		c.Salt, c.StoredKey, c.ServerKey = slices.Clone(x.Salt), slices.Clone(x.StoredKey), slices.Clone(x.ServerKey)
		s.SCRAM[SCRAMKey{x.Name, x.Mechanism}] = c
	case *RemoveUserSCRAMCredential:
		k := SCRAMKey{x.Name, x.Mechanism}
		if _, ok := s.SCRAM[k]; !ok {
			return true, fmt.Errorf("removal of a missing SCRAM credential of %q (mechanism %d)", x.Name, x.Mechanism)
		}
		delete(s.SCRAM, k)
	case *AccessControlEntry:
		if _, dup := s.ACLs[x.ID]; dup {
			return true, fmt.Errorf("an ACL with id %x exists", x.ID)
		}
		s.ACLs[x.ID] = *x
	case *RemoveAccessControlEntry:
		if _, ok := s.ACLs[x.ID]; !ok {
			return true, fmt.Errorf("removal of an unknown ACL %x", x.ID)
		}
		delete(s.ACLs, x.ID)
	case *ClientQuota:
		if len(x.Entity) == 0 {
			return true, fmt.Errorf("client quota %s of an empty entity", x.Key)
		}
		k := QuotaEntityKey(x.Entity)
		q := s.Quotas[k]
		if x.Remove {
			if q != nil {
				delete(q.Values, x.Key)
				if len(q.Values) == 0 {
					delete(s.Quotas, k)
				}
			}
			break
		}
		if q == nil {
			q = &QuotaImage{Entity: cloneEntity(x.Entity), Values: map[string]float64{}}
			s.Quotas[k] = q
		}
		q.Values[x.Key] = x.Value
	default:
		return false, nil
	}
	s.Offset = img.Offset
	return true, nil
}

// records are the records that rebuild the security image, in a stable
// order.
func (s SecurityImage) records() []Record {
	var out []Record
	for _, k := range slices.SortedFunc(maps.Keys(s.SCRAM), func(a, b SCRAMKey) int {
		return cmp.Or(strings.Compare(a.User, b.User), cmp.Compare(a.Mechanism, b.Mechanism))
	}) {
		c := s.SCRAM[k]
		out = append(out, &c)
	}
	for _, id := range slices.SortedFunc(maps.Keys(s.ACLs), func(a, b [16]byte) int { return slices.Compare(a[:], b[:]) }) {
		acl := s.ACLs[id]
		out = append(out, &acl)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Quotas)) {
		q := s.Quotas[k]
		for _, key := range slices.Sorted(maps.Keys(q.Values)) {
			out = append(out, &ClientQuota{Entity: cloneEntity(q.Entity), Key: key, Value: q.Values[key]})
		}
	}
	return out
}
